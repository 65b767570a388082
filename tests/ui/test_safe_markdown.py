"""User text and messages shown through Streamlit's Markdown stay literal."""

from attnviz.ui.safe import md_escape, message_markdown


def test_hyphen_runs_are_kept_apart_so_markdown_makes_no_dash():
    # Streamlit's Markdown turned "\-\-" into an em dash in Chromium; a zero-width space prevents it.
    assert md_escape("a--b") == "a\\-\u200b\\-b"
    assert md_escape("---").count("\u200b") == 2
    assert md_escape("<b>$x$</b>") == "\\<b\\>\\$x\\$\\</b\\>"


def test_quoted_commands_become_code_and_everything_else_is_escaped():
    message = "Restore with `git checkout -- assets/image-model`; the name '`<img src=x>`' is not a model."
    shown = message_markdown(message)
    assert "`git checkout -- assets/image-model`" in shown  # a code span: read and copied as written
    assert "\\`\\<img src=x\\>\\`" in shown  # not a command: escaped, shown with its backticks


def test_untrusted_text_makes_no_autolink():
    """Streamlit's Markdown (GFM) links bare http://, https://, www. and e-mail addresses even when every
    special character is escaped: seen in Chromium, a class name "[click](http://evil.example)" in a
    caption became a live link. md_escape breaks them with a zero-width space, for every string."""
    text = "[click](http://evil.example) HTTPS://x.example www.evil.example WWW.x.example me@evil.example"
    shown = md_escape(text)
    for live in ("http://", "https://", "www.", "@evil"):
        assert live not in shown.lower().replace("\\", ""), shown
    # Apart from the zero-width spaces, every character is there, each special one backslash-escaped.
    assert shown.replace("\u200b", "") == "".join("\\" + c if c in "[]()\\.:@" else c for c in text).replace(
        "\\@", "@"
    )
    assert md_escape("plain words, no link") == "plain words, no link"
