"""Text for speech-to-text tasks, with tensorflow-text: the one transcript
normalisation, character and word-piece tokenizers, CTC loss and greedy
decoding, word and character edit distances, and matching a transcript to the
closest of a list of commands. All TensorFlow ops, so training, evaluation and
an exported graph treat text the same way.

tensorflow-text is imported inside each function: importing it registers its
ops with TensorFlow, and tasks that never touch text should not pay for that.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

ALPHABET = " abcdefghijklmnopqrstuvwxyz0123456789'"
CHAR_TOKENS = ["<blank>", *ALPHABET]  # Token ids: 0 is CTC's blank; 1.. the characters.


def normalize(text: tf.Tensor) -> tf.Tensor:
    """The one transcript normalisation (training, evaluation, export).

    NFKC (compatibility forms: full-width letters, ligatures), Unicode case
    folding, accents removed (NFD, then combining marks dropped), typographic
    apostrophes made `'`, every other character outside `a-z 0-9 '` a space,
    spaces collapsed and trimmed. "Turn ON the Café’s lights!" -> "turn on the
    cafe's lights".

    Args:
        text: strings, any shape.

    Returns:
        The normalised strings, same shape.
    """
    import tensorflow_text as tft

    text = tft.case_fold_utf8(tft.normalize_utf8(text, "NFKC"))
    text = tf.strings.regex_replace(tft.normalize_utf8(text, "NFD"), r"\p{Mn}", "")
    text = tf.strings.regex_replace(text, "[\u2018\u2019\u02bc`]", "'")
    text = tf.strings.regex_replace(text, r"[^a-z0-9' ]+", " ")
    return tf.strings.strip(tf.strings.regex_replace(text, " +", " "))


def _wordpiece(tokens: list[str]):
    import tensorflow_text as tft

    return tft.FastWordpieceTokenizer(tokens, suffix_indicator="##", unknown_token="[UNK]",
                                      token_out_type=tf.int64, support_detokenization=True)


def tokenize(text: tf.Tensor, tokens: list[str] | None = None) -> tf.RaggedTensor:
    """Normalised text `[batch]` -> token ids `[batch, (n)]`.

    Args:
        text: normalised strings.
        tokens: `CHAR_TOKENS` (or None, the same) for one id per character with
            `UnicodeCharTokenizer` (characters outside `ALPHABET` are dropped), or
            a word-piece vocabulary from `wordpiece_vocabulary` for
            `FastWordpieceTokenizer`. Defaults to None.

    Returns:
        Ragged token ids, none of them 0 (CTC's blank).
    """
    import tensorflow_text as tft

    if tokens is not None and tokens != CHAR_TOKENS:
        return _wordpiece(tokens).tokenize(text)
    codepoints = tft.UnicodeCharTokenizer().tokenize(text)
    table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(tf.constant([ord(c) for c in ALPHABET], tf.int64),
                                            tf.range(1, len(CHAR_TOKENS), dtype=tf.int64)), default_value=0)
    ids = tf.ragged.map_flat_values(table.lookup, tf.cast(codepoints, tf.int64))
    return tf.ragged.boolean_mask(ids, ids > 0)


def detokenize(ids: tf.Tensor, tokens: list[str] | None = None) -> tf.Tensor:
    """Token ids `[batch, n]` (0 = padding or blank, dropped) -> strings, in the graph."""
    ids = tf.ragged.boolean_mask(ids, ids > 0)
    if tokens is not None and tokens != CHAR_TOKENS:
        return _wordpiece(tokens).detokenize(ids)
    chars = tf.gather(tf.constant(["", *ALPHABET]), ids)
    return tf.strings.strip(tf.strings.reduce_join(chars, axis=-1))


def wordpiece_vocabulary(texts: list[str]) -> list[str]:
    """Word pieces from training transcripts: blank, `[UNK]`, every word seen twice or more, and every
    character alone and as a `##` suffix, so any normalised text can be spelled."""
    words, counts = np.unique(" ".join(texts).split(), return_counts=True)
    chars = sorted(set(ALPHABET) - {" "})
    return ["<blank>", "[UNK]", *sorted(w for w, c in zip(words.tolist(), counts) if c >= 2 and len(w) > 1),
            *chars, *("##" + c for c in chars)]


@keras.saving.register_keras_serializable(package="suite")
class CTCLoss(keras.losses.Loss):
    """CTC over a model's per-step logits `[batch, steps, tokens]`; targets are token ids `[batch, n]`,
    0-padded (0 is also the blank).

    The targets go to `tf.nn.ctc_loss` as a sparse tensor, which runs TensorFlow's C++ CTC kernel;
    `keras.ops.ctc_loss` passes them dense, which takes TensorFlow's `tf.scan` implementation: the same
    loss and gradients, 20x slower on CPU (203 against 10 ms for 32 x 100 steps), most of a training step.
    """

    def call(self, y_true, y_pred):
        y_true = tf.cast(y_true, tf.int32)
        steps = tf.fill([tf.shape(y_pred)[0]], tf.shape(y_pred)[1])
        return tf.nn.ctc_loss(tf.sparse.from_dense(y_true), tf.cast(y_pred, tf.float32), None, steps,
                              logits_time_major=False, blank_index=0)


def greedy_decode(logits: tf.Tensor, tokens: list[str] | None = None) -> tuple[tf.Tensor, tf.Tensor]:
    """Best path: argmax per step, repeats merged, blanks dropped.

    Returns:
        The texts `[batch]` and their confidences: the geometric mean of the best
        path's per-step probabilities.
    """
    logits = tf.convert_to_tensor(logits)
    best = tf.argmax(logits, axis=-1, output_type=tf.int32)  # [b, t]
    keep = tf.concat([tf.ones_like(best[:, :1], bool), best[:, 1:] != best[:, :-1]], 1) & (best > 0)
    ids = tf.where(keep, best, 0)
    confidence = tf.exp(tf.reduce_mean(tf.reduce_max(tf.nn.log_softmax(logits), -1), -1))
    return detokenize(ids, tokens), confidence


def edit_distance(a: tf.Tensor, b: tf.Tensor, unit: str = "word") -> tf.Tensor:
    """Levenshtein distance per pair of strings with `tf.edit_distance`, not normalised.

    Args:
        a: strings `[n]`.
        b: strings `[n]`.
        unit: "word" (tensorflow-text's `WhitespaceTokenizer`) or "char"
            (`UnicodeCharTokenizer`). Defaults to "word".
    """
    import tensorflow_text as tft

    tok = tft.WhitespaceTokenizer() if unit == "word" else tft.UnicodeCharTokenizer()
    ta, tb = tok.tokenize(a), tok.tokenize(b)
    if unit != "word":
        ta, tb = tf.strings.as_string(ta), tf.strings.as_string(tb)
    return tf.edit_distance(ta.to_sparse(), tb.to_sparse(), normalize=False)


def closest_command(texts: tf.Tensor, commands: tuple[str, ...]) -> tuple[tf.Tensor, tf.Tensor]:
    """The closest command to each text, and that distance: word edit distance over the command's length."""
    table = tf.constant(list(commands))
    n, k = tf.shape(texts)[0], len(commands)
    words = tf.cast(tf.strings.length(tf.strings.regex_replace(table, "[^ ]", "")) + 1, tf.float32)
    d = tf.reshape(edit_distance(tf.repeat(texts, k), tf.tile(table, [n])), [n, k]) / words[None, :]
    best = tf.argmin(d, axis=1, output_type=tf.int32)
    return tf.gather(table, best), tf.gather(d, best, batch_dims=1)
