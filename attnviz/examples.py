"""Example inputs offered on the pages: short, and each shows something worth seeing."""

#: label -> (sentence, second sentence or None)
TEXT_EXAMPLES: dict[str, tuple[str, str | None]] = {
    "Coreference": ("The animal didn't cross the street because it was too tired.", None),
    "Subword pieces": ("Tokenization splits unbelievably long words into pieces.", None),
    "Repeated words": ("The cat sat on the mat, and the dog sat on the cat.", None),
    "Question and answer (pair)": ("Where did the cat sit?", "The cat sat on the mat."),
    "Paraphrase (pair)": ("A man is playing a guitar.", "Someone plays an instrument."),
}
DEFAULT_TEXT = TEXT_EXAMPLES["Coreference"][0]
