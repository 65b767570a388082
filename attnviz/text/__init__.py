"""Text models (BERT-family encoders): loading, one forward pass with every head's attention,
word and pair views, integrated-gradients attributions, corpus statistics and their command line
(``python -m attnviz.text.corpus_cli``), and the worked example on a real model's own weights."""
