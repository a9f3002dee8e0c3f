"""SplitMix64 (Steele, Lea and Flood 2014) with unbiased bounded draws by rejection, as docs/metrics.md
specifies for the seeded folds and bootstrap resamples. An independent Python implementation of the
stream the Swift code draws from; used by the cross-check scripts here and by bench/numpy_reference.py."""

MASK = (1 << 64) - 1


class SplitMix64:
    def __init__(self, seed):
        self.state = seed & MASK

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

    def below(self, bound):
        """A draw in 0..<bound: values below 2^64 mod bound are rejected so every residue is equally likely."""
        threshold = (1 << 64) % bound
        while True:
            r = self.next()
            if r >= threshold:
                return r % bound
