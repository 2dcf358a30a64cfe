"""What the enrich stage computes, one room per field, free of the bus and of spaCy loading.

- ``language``: language and confidence (py3langid, whose model ships in its wheel).
- ``entities``: turning NER spans into merged people / organizations / locations.
- ``countries``: place names -> ISO 3166-1 alpha-2 codes.
- ``keywords``: keyphrases.
- ``summary``: sentence splitting, extractive summary, word count and reading time.
- ``sources``: the original source an article credits ("told CBS News", "(AP)", a source link).
"""
