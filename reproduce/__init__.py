"""reproduce: reproduce figures of deep-learning-theory papers and check their claims (`repro`)."""
__version__ = "0.1.0"
