"""Shared fixtures: a tiny random BERT masked-LM built per session (runs anywhere) and the real
data and models in ../shared (read in place, never copied; tests that need them carry the
``real_model`` marker).

Set ``SPARSEARCH_SHARED`` to read the real data from another folder than ``../shared``.
Nothing here reads the shared folder at import time: ``-m "not real_model"`` runs without it.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from sparsearch.models import SparseEncoder

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SPARSEARCH_SHARED") or REPO.parent / "shared").expanduser().resolve()
DATA = SHARED / "data"
HF_CACHE = SHARED / "hf-cache"
IDF_JSON = SHARED / "models" / "opensearch-bert-uncased-idf" / "idf.json"

if HF_CACHE.is_dir():  # tests load real models by hub id from the offline cache
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_CACHE", str(HF_CACHE))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

_MISSING = "run with SPARSEARCH_SHARED=<folder> or deselect these tests with -m 'not real_model'"


def require_shared(path: Path, what: str) -> Path:
    """``path`` if it exists; otherwise the test fails (never skips) naming what is missing."""
    if not path.exists():
        pytest.fail(f"{what} expected at {path}, which is missing; {_MISSING}", pytrace=False)
    return path


def real_model(name: str) -> str:
    """A hub id checked against the offline cache, for the tests that load real models."""
    from huggingface_hub import constants

    cache = Path(constants.HF_HUB_CACHE)
    if constants.HF_HUB_OFFLINE:
        require_shared(cache / ("models--" + name.replace("/", "--")), f"real model {name!r}")
    return name


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder of real BEIR datasets; tests that need it fail loudly if it is absent."""
    return require_shared(DATA, "real datasets")


@pytest.fixture(scope="session")
def idf_json() -> Path:
    """OpenSearch's real IDF table for bert-base-uncased (30522 tokens)."""
    return require_shared(IDF_JSON, "the real IDF table")


# ---------------------------------------------------------------------------- tiny random model

#: Texts the tiny model's vocabulary covers word for word (anything else falls back to letters).
SENTENCES = [
    "The weather is so nice!",
    "It's so sunny outside.",
    "He's driving to the movie theater.",
    "She's going to the cinema.",
]

#: A small BEIR-style corpus: doc id -> (title, text); TINY_QUERIES[i] is judged relevant to d{i}.
TINY_DOCS = {
    "d0": ("Fever", "Aspirin lowers a fever and eases a headache."),
    "d1": ("Paris", "Paris is the capital and largest city of France."),
    "d2": ("Sparse retrieval", "Sparse retrieval scores documents by the words they share."),
    "d3": ("Dense retrieval", "Dense retrieval compares short vectors of real numbers."),
    "d4": ("Weather", "The weather is sunny and warm today."),
    "d5": ("Cinema", "She is going to the cinema to watch a movie."),
    "d6": ("Rain", "Rain forms when water vapour condenses into droplets."),
    "d7": ("Snow", "Snow is frozen water made of ice crystals."),
    "d8": ("Vaccines", "Vaccines train the immune system to fight a virus."),
    "d9": ("Antibiotics", "Antibiotics kill bacteria but not viruses."),
    "d10": ("Python", "Python can sort a list with the sorted function."),
    "d11": ("Berlin", "Berlin is the capital of Germany."),
    "d12": ("Proteins", "Protein folding decides the shape of a protein."),
    "d13": ("Cancer", "Cancer cells grow when gene expression goes wrong."),
    "d14": ("Heart", "The heart pumps blood through the body."),
    "d15": ("Coffee", "Coffee keeps people awake in the morning."),
}
TINY_QUERIES = [
    "what lowers a fever",
    "capital of france",
    "how does sparse retrieval work",
    "what are dense vectors",
    "is it sunny today",
    "where to watch a movie",
    "what causes rain",
    "what is snow made of",
    "how do vaccines work",
    "do antibiotics kill viruses",
    "how to sort a python list",
    "capital of germany",
    "protein folding",
    "cancer cells and gene expression",
    "what pumps blood",
    "what keeps you awake",
]

_SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
_WORDS = """
the a an is are was were be been being am it its it's he she they we you i me my your his her
their our this that these those what which who whom whose when where why how do does did done
doing not no yes so very much many more most less few some any all each every one two three four
five first last new old good bad big small long short high low real true false nice warm cold hot
of to in on at by for with from into onto about than then but and or if as up down out over under
through between after before again also only just still can cannot could will would should may
might must has have had having get got make made use used keep keeps go goes going went come
take give find know think see look want need work works show shows say says tell call try ask
weather sunny rain rainy snow cloud clouds water vapour droplets ice crystals frozen forms wind
outside inside today tomorrow morning evening night day week year time
driving drive car movie theater theatre cinema watch film music game book books
fever aspirin headache pain medicine doctor patient patients drug drugs dose treatment disease
heart blood body pumps brain cells cell gene genes expression cancer tumor protein proteins
folding fold shape virus viruses bacteria antibiotics vaccine vaccines immune system infection
health study studies trial effect effects risk
paris france capital city largest lyon berlin germany london england rome italy country world
sparse dense retrieval search index query queries document documents vector vectors model models
score scores scoring rank ranking words word text texts token tokens share shared weight weights
numbers number compares compare short learned neural network encoder embedding embeddings
python java list lists sort sorted sorts function tuple code data file files
coffee tea awake sleep people person man woman child children food eat
kill kills fight train trains grow grows wrong right goes eases lowers decides
"""
_PIECES = "s es ed ing er ers est ly ion ions tion al ness ment ity ic ive able".split()


def tiny_vocab() -> list[str]:
    """[PAD] [UNK] [CLS] [SEP] [MASK], punctuation, digits, letters, ``##`` pieces and words."""
    chars = [chr(c) for c in range(ord("a"), ord("z") + 1)] + list("0123456789")
    punctuation = list(".,!?;:'\"()[]{}-_/\\&%$#@*+=<>|~`^")
    tokens = (
        _SPECIAL + punctuation + chars + ["##" + c for c in chars] + ["##" + p for p in _PIECES]
    )
    return list(dict.fromkeys(tokens + _WORDS.split()))


def _tiny_tokenizer(vocab: list[str]):
    """A fast WordPiece tokenizer over ``vocab``, lower-casing like bert-base-uncased."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import BertTokenizerFast

    ids = {token: i for i, token in enumerate(vocab)}
    backend = Tokenizer(models.WordPiece(ids, unk_token="[UNK]"))
    backend.normalizer = normalizers.BertNormalizer(lowercase=True)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", ids["[CLS]"]), ("[SEP]", ids["[SEP]"])],
    )
    backend.decoder = decoders.WordPiece()
    return BertTokenizerFast(
        tokenizer_object=backend,
        unk_token="[UNK]",
        sep_token="[SEP]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        mask_token="[MASK]",
        model_max_length=128,
    )


def build_tiny_model(path: Path, seed: int = 0) -> Path:
    """Save a random 2-layer BERT masked-LM (hidden 32) and its tokenizer into ``path``."""
    import torch
    from transformers import BertConfig, BertForMaskedLM

    vocab = tiny_vocab()
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    torch.manual_seed(seed)
    BertForMaskedLM(config).eval().save_pretrained(str(path))
    _tiny_tokenizer(vocab).save_pretrained(str(path))
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A plain fill-mask folder (config.json + weights + tokenizer) of the tiny random BERT."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def tiny_idf_json(tmp_path_factory) -> Path:
    """A ``{token: weight}`` table over the tiny vocabulary, like OpenSearch's idf.json."""
    import numpy as np

    tokens = [t for t in tiny_vocab() if t not in _SPECIAL]
    weights = np.random.default_rng(0).uniform(0.5, 6.0, len(tokens)).round(4)
    path = tmp_path_factory.mktemp("tiny-idf") / "idf.json"
    path.write_text(json.dumps(dict(zip(tokens, weights.tolist(), strict=True))))
    return path


@pytest.fixture(scope="session")
def _tiny_splade(tiny_model_dir):
    from sparsearch.models import SparseEncoder

    return SparseEncoder(tiny_model_dir)


@pytest.fixture()
def tiny_splade(_tiny_splade) -> SparseEncoder:
    """The tiny random model as the default SPLADE stack (MLM + max/relu pooling); a fresh copy."""
    return copy.deepcopy(_tiny_splade)


@pytest.fixture(scope="session")
def _tiny_inference_free(tiny_model_dir, tiny_idf_json):
    from sparsearch.models import (
        MLMTransformer,
        Router,
        SparseEncoder,
        SparseStaticEmbedding,
        SpladePooling,
    )

    mlm = MLMTransformer(tiny_model_dir)
    static = SparseStaticEmbedding.from_json(tiny_idf_json, tokenizer=mlm.tokenizer)
    return SparseEncoder(modules=[Router.for_query_document([static], [mlm, SpladePooling()])])


@pytest.fixture()
def tiny_inference_free(_tiny_inference_free) -> SparseEncoder:
    """Inference-free SPLADE on the tiny model: static weights for queries; a fresh copy."""
    return copy.deepcopy(_tiny_inference_free)


def write_tiny_beir(root: Path, split: str = "test", n_docs: int | None = None) -> Path:
    """Write TINY_DOCS / TINY_QUERIES (query i judges d{i}) as a BEIR folder with one split."""
    docs = list(TINY_DOCS.items())[:n_docs]
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text(
        "".join(
            json.dumps({"_id": d, "title": title, "text": text}) + "\n" for d, (title, text) in docs
        )
    )
    (root / "queries.jsonl").write_text(
        "".join(
            json.dumps({"_id": f"q{i}", "text": q}) + "\n"
            for i, q in enumerate(TINY_QUERIES[: len(docs)])
        )
    )
    (root / "qrels" / f"{split}.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"q{i}\t{d}\t1\n" for i, (d, _) in enumerate(docs))
    )
    return root
