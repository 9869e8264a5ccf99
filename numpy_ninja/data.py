"""Names data: read a word list, build the vocabulary, the split, and the examples: the
lecture's context windows, or makemore's whole-word sequences."""
import codecs
import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .console import UserError

BOUNDARY = "."
SHIPPED = "shipped:names.txt"  # how a run refers to the shipped list, wherever it is installed


def default_data_path():
    """The shipped names.txt: data/ of the checkout this package runs from, else share/ of the
    environment it was installed into."""
    root = Path(__file__).resolve().parent.parent
    if (root / "setup.cfg").is_file() and (root / "data" / "names.txt").is_file():
        return root / "data" / "names.txt"
    return Path(sys.prefix) / "share" / "numpy-ninja" / "names.txt"


def data_ref(path):
    """What a run records for a names file: SHIPPED for the shipped list (so that the run still
    finds it after a reinstall moves it), else the file's absolute path."""
    path = Path(path).resolve()
    return SHIPPED if path == default_data_path().resolve() else str(path)


def data_path(ref):
    """The file a recorded reference names (see data_ref)."""
    return default_data_path() if ref == SHIPPED else Path(ref)


def describe_data(ref):
    """A reference for messages: the shipped list is named with where it is now."""
    return f"the shipped names ({default_data_path()})" if ref == SHIPPED else str(ref)


def words_sha256(words):
    """The identity of a word list: SHA-256 of its words, one per line. The split and the
    examples depend on nothing else, so line endings, blank lines and a byte-order mark do not
    change it, and any change to a word does."""
    return hashlib.sha256("\n".join(words).encode("utf-8")).hexdigest()


class DataError(UserError, ValueError):
    """A names file that cannot be used; the message names the file (and line)."""


def load_words(path):
    """Words of a UTF-8 file, one per line: whitespace stripped, blank lines skipped, CRLF and a
    leading byte-order mark accepted."""
    path = Path(path)
    try:
        if path.exists() and not path.is_dir() and not path.is_file():
            raise DataError(f"{path}: not a regular file (a names file is read whole)")
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, not a names file") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror})") from None
    if raw.startswith(codecs.BOM_UTF8):  # an editor's marker, not a character of the data
        raw = raw[len(codecs.BOM_UTF8):]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise DataError(f"{path}:{line}: not valid UTF-8 (byte 0x{raw[e.start]:02x})") from None
    words = []
    for lineno, line in enumerate(text.splitlines(), 1):
        word = line.strip()
        if not word:
            continue
        if BOUNDARY in word:
            raise DataError(f"{path}:{lineno}: the word {word!r} contains {BOUNDARY!r}, "
                            "which is reserved for the start/end of a word")
        if any(c.isspace() for c in word):
            raise DataError(f"{path}:{lineno}: {word!r} is more than one word; put one word per line")
        words.append(word)
    if not words:
        raise DataError(f"{path}: no words in the file")
    return words


@dataclass(frozen=True)
class Vocab:
    """Index 0 is the boundary token '.', then the sorted characters."""

    chars: str  # the characters of indices 1..V-1

    @classmethod
    def from_words(cls, words):
        return cls("".join(sorted(set("".join(words)))))

    @property
    def itos(self):
        return BOUNDARY + self.chars

    @property
    def stoi(self):
        return {c: i for i, c in enumerate(self.itos)}

    def __len__(self):
        return len(self.chars) + 1

    def encode(self, word):
        stoi = self.stoi
        return [stoi[c] for c in word]

    def decode(self, ids):
        itos = self.itos
        return "".join(itos[i] for i in ids)


def build_dataset(words, vocab, block_size):
    """Context windows. Returns X int64 (N, block_size) and Y int64 (N,), one row per character
    and one for the end of each word; contexts start padded with the boundary token."""
    if not words:
        return np.zeros((0, block_size), np.int64), np.zeros(0, np.int64)
    stoi = vocab.stoi
    pad = [0] * block_size
    seqs = np.array([i for w in words for i in pad + [stoi[c] for c in w] + [0]], np.int64)
    # a word of length L gives the L+1 windows starting at its first L+1 positions
    counts = np.array([len(w) + 1 for w in words], np.int64)
    starts = np.cumsum(counts + block_size) - (counts + block_size)  # where each word begins
    first = np.cumsum(counts) - counts  # its first window's row
    rows = np.repeat(starts - first, counts) + np.arange(counts.sum())
    windows = np.lib.stride_tricks.sliding_window_view(seqs, block_size + 1)[rows]
    return np.ascontiguousarray(windows[:, :-1]), windows[:, -1].copy()


IGNORE = -1  # the target of a padding position in a sequence, not counted by the loss


def sequence_length(words):
    """The sequence length makemore.py gives these words (its block_size): the longest plus one."""
    return max(map(len, words), default=0) + 1


def build_sequences(words, vocab, length):
    """makemore's sequences: X, Y int64 (len(words), length). A word w of L characters becomes

        x = [0, w_1, ..., w_L, 0, ..., 0]      the boundary token, then the word
        y = [w_1, ..., w_L, 0, -1, ..., -1]    the word, the boundary, then IGNORE

    so position t predicts y_t from x_0..x_t. Every word must be shorter than length."""
    X = np.zeros((len(words), length), np.int64)
    Y = np.full((len(words), length), IGNORE, np.int64)
    stoi = vocab.stoi
    for i, word in enumerate(words):
        if len(word) >= length:
            raise DataError(f"the word {word!r} has {len(word)} characters; the model reads "
                            f"sequences of {length}, words of at most {length - 1}")
        ids = [stoi[c] for c in word]
        X[i, 1:1 + len(ids)] = ids
        Y[i, :len(ids)] = ids
        Y[i, len(ids)] = 0  # the end of the word
    return X, Y


def split_words(words, seed):
    """The seeded 80/10/10 split of the shuffled words: (train, val, test)."""
    order = np.random.default_rng(seed).permutation(len(words))
    shuffled = [words[i] for i in order]
    n1, n2 = int(0.8 * len(words)), int(0.9 * len(words))
    return shuffled[:n1], shuffled[n1:n2], shuffled[n2:]


def count_examples(words, sequences=False):
    """How many rows build_dataset makes of these words (one per character and one per word
    end), or build_sequences (one per word)."""
    return len(words) if sequences else sum(map(len, words)) + len(words)


def build_examples(words, vocab, block_size, sequences=False):
    """build_sequences (makemore's models) or build_dataset (the lecture's) of these words."""
    return (build_sequences if sequences else build_dataset)(words, vocab, block_size)


@dataclass
class Dataset:
    """A names file, its vocabulary and the (X, Y) arrays of each split: context windows, or
    with sequences=True whole words (block_size their length)."""

    path: Path
    words: list
    vocab: Vocab
    block_size: int
    splits: dict  # "train" | "val" | "test" -> (X, Y)
    split_words: dict  # "train" | "val" | "test" -> list of words
    sequences: bool = False

    @classmethod
    def from_words(cls, path, words, block_size, seed, sequences=False):
        vocab = Vocab.from_words(words)
        parts = dict(zip(("train", "val", "test"), split_words(words, seed)))
        splits = {k: build_examples(ws, vocab, block_size, sequences) for k, ws in parts.items()}
        return cls(Path(path), words, vocab, block_size, splits, parts, sequences)


def load_dataset(path, block_size, seed, sequences=False):
    return Dataset.from_words(path, load_words(path), block_size, seed, sequences)
