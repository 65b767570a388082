"""Image models: decoding a person's file safely, the bundled CNN-attention model and ViTs,
one forward pass with every head's attention, Grad-CAM and Integrated Gradients (captum), the
generated shapes, training (``python -m attnviz.image.train``) and the faithfulness measurement
(``python -m attnviz.image.faithfulness``)."""
