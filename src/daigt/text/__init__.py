"""Text representations the CPU families share: BPE tokenizers learnt from a run's essays (``bpe``), n-gram
counting in numpy (``ngram_counts``) and the shared-count TF-IDF over those n-grams (``ngram_tfidf``)."""
