# The README's two commands: `make demo` and `make test`. Each installs what is missing, then
# configures, builds, fetches the data (tools/fetch-data.sh) and runs. Other targets: build, data,
# bench, bench-serve, bench-slo, bench-ort, bench-kernels, bench-text, bench-text-pretrain, bench-text-speed, bench-spam, bench-recsys, fixtures, asan, fuzz, clean.
BUILD ?= build
BUILD_TYPE ?= Release
CMAKE_FLAGS ?=
JOBS ?= $(shell nproc)

FUZZ_SECONDS ?= 60

.PHONY: all deps data configure build test demo bench bench-serve bench-slo bench-ort bench-kernels bench-text bench-text-pretrain bench-text-speed bench-spam bench-recsys fixtures asan fuzz clean

all: build

deps:
	@tools/install-deps.sh
	@tools/install-node-tools.sh

data: deps
	@tools/fetch-data.sh

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_FLAGS)

configure: deps $(BUILD)/build.ninja

build: configure
	cmake --build $(BUILD) -j $(JOBS)

test: build data
	cd $(BUILD) && ctest --output-on-failure --timeout 900

demo: build data
	$(BUILD)/focus demo

bench: build
	@tools/install-deps.sh python3-torch
	bench/run_all.sh $(BUILD)

# The sequential recommender (issue 20): focus's sasrec next to its PyTorch twin and the popularity
# and Markov baselines on the synthetic interactions, with the generator's oracle
# (bench/compare_recsys.py; docs/RESULTS_RECSYS.md): ~15 minutes; QUICK=1 for ~5 minutes.
bench-recsys: configure
	@tools/install-deps.sh python3-torch
	cmake --build $(BUILD) -j $(JOBS) --target focus
	/usr/bin/python3 bench/compare_recsys.py --build $(BUILD) $(if $(QUICK),--quick)

# focus serve next to its FastAPI + uvicorn + PyTorch twin (bench/compare_serve.py, issue 18):
# ~15 minutes; QUICK=1 for one round of short runs (~3 minutes).
bench-serve: configure
	@tools/install-deps.sh python3-torch python3-numpy python3-fastapi python3-uvicorn \
	  python3-uvloop python3-httptools python3-pil wrk
	cmake --build $(BUILD) -j $(JOBS) --target focus serve_load
	/usr/bin/python3 bench/compare_serve.py --build $(BUILD) $(if $(QUICK),--quick)

# The latency SLO controller under a load step, 50% -> 150% of the f32 capacity, against the
# model fixed in f32 (bench/slo_step.py, issue 22): ~3 minutes.
bench-slo: configure
	@tools/install-deps.sh wrk
	cmake --build $(BUILD) -j $(JOBS) --target focus serve_load
	/usr/bin/python3 bench/slo_step.py --build $(BUILD) $(if $(MODEL),--model $(MODEL))

# GEMM and convolution GFLOP/s by shape for OpenBLAS, oneDNN and focus's kernels, as % of the FMA
# peak measured in the same run (bench/kernel_table.cpp, issue 21): ~2 minutes; QUICK=1 ~30 s.
bench-kernels: configure
	cmake --build $(BUILD) -j $(JOBS) --target kernel_table
	$(BUILD)/kernel_table $(if $(QUICK),--quick)

# focus inference next to ONNX Runtime on the same weights (bench/compare_ort.py, issue 21):
# exports the PyTorch twins to ONNX, verifies focus against ORT, then interleaved rounds (PyTorch
# 1.13 eager beside them). onnxruntime-node goes into $(BUILD)/ort with --ignore-scripts (its
# install script only fetches GPU libraries; the CPU library is in the package). ~6 minutes;
# QUICK=1 for one round of short runs (~2 minutes).
ORT_VERSION ?= 1.30.0
bench-ort: configure
	@tools/install-deps.sh python3-torch python3-numpy nodejs
	cmake --build $(BUILD) -j $(JOBS) --target bench_models
	@[ -f $(BUILD)/ort/node_modules/onnxruntime-node/package.json ] && \
	  grep -q '"version": "$(ORT_VERSION)"' $(BUILD)/ort/node_modules/onnxruntime-node/package.json || \
	  npm install --ignore-scripts --no-audit --no-fund --prefix $(BUILD)/ort onnxruntime-node@$(ORT_VERSION)
	/usr/bin/python3 bench/compare_ort.py --build $(BUILD) $(if $(QUICK),--quick) \
	  --out $(BUILD)/bench_ort.md --json-out $(BUILD)/bench_ort.json

# Text classification (docs/RESULTS_TEXT.md): 10-fold cross-validation of text-transformer on the
# pooled sentiment sentences, and TF-IDF + logistic regression / naive Bayes on the same folds.
TEXT_CV_FLAGS ?= --epochs 30 --patience 6 --batch 32 --lr 3e-3 --weight-decay 0.5 \
  --label-smoothing 0.1 --token-dropout 0.1 --src-tokenizer bpe --bpe-merges 1500 --threads 1 \
  --model-config '{"dim": 32, "depth": 1, "heads": 2, "dropout": 0.3}'
# TEXT_WIDE_FLAGS: the same with the n-gram branch (wide & deep), refit on all of a fold's training
# rows and 5 seeds per fold (docs/RESULTS.md "The n-gram branch"); ~20 more minutes of one thread.
TEXT_WIDE_FLAGS ?= --epochs 30 --patience 6 --batch 32 --lr 3e-3 --weight-decay 0.5 \
  --label-smoothing 0.1 --token-dropout 0.1 --src-tokenizer bpe --bpe-merges 1500 --threads 1 \
  --refit --seeds 5 --model-config '{"dim": 32, "depth": 1, "heads": 2, "dropout": 0.3, \
  "ngram_buckets": 200000, "ngram_order": 2, "ngram_scale": 10}'
# TEXT_NB_FLAGS: NB-weighted n-grams, SGD + L2, depth 0, refit + 5 seeds (docs/RESULTS_TEXT.md
# "NB-weighted n-grams", chosen on held-out validation); ~4 more minutes of one thread.
TEXT_NB_FLAGS ?= --epochs 60 --patience 15 --batch 32 --optimizer sgd --momentum 0.9 --lr 0.1 \
  --weight-decay 0.01 --label-smoothing 0.1 --token-dropout 0.1 --src-tokenizer bpe --bpe-merges 1500 \
  --threads 1 --refit --seeds 5 --model-config '{"dim": 16, "depth": 0, "heads": 2, "dropout": 0.3, \
  "ngram_buckets": 200000, "ngram_order": 2, "ngram_scale": 10, "ngram_nb": 1.0}'
# TEXT_FIT_FLAGS: the n-gram branch (word 1-2 grams, NB ratios, TF-IDF) fitted to convergence by
# L-BFGS with C = 15, then the encoder trained on top of it; refit (docs/RESULTS_TEXT.md "fitted to
# convergence", chosen on held-out validation); ~2 more minutes of one thread.
TEXT_FIT_FLAGS ?= --epochs 30 --patience 6 --batch 32 --lr 3e-3 --weight-decay 0.5 --label-smoothing 0.1 \
  --token-dropout 0.1 --src-tokenizer word --min-count 1 --threads 1 --refit \
  --model-config '{"dim": 16, "depth": 0, "heads": 2, "dropout": 0.3, "ngram_buckets": 200000, \
  "ngram_order": 2, "ngram_scale": 10, "ngram_nb": 1.0, "ngram_idf": true, "ngram_fit": 15}'
bench-text: configure data
	@tools/install-deps.sh python3-sklearn
	cmake --build $(BUILD) -j $(JOBS) --target focus
	$(BUILD)/focus cv --data sentiment --folds 10 $(TEXT_CV_FLAGS) --out runs/text-cv --folds-out runs/text-cv/folds.tsv
	$(BUILD)/focus cv --data sentiment --folds 10 $(TEXT_WIDE_FLAGS) --out runs/text-cv-wide
	$(BUILD)/focus cv --data sentiment --folds 10 $(TEXT_NB_FLAGS) --out runs/text-cv-nb
	$(BUILD)/focus cv --data sentiment --folds 10 $(TEXT_FIT_FLAGS) --out runs/text-cv-fit
	/usr/bin/python3 bench/text_baselines.py runs/text-cv/folds.tsv --focus plain=runs/text-cv/cv.json \
	  --focus wide=runs/text-cv-wide/cv.json --focus nb=runs/text-cv-nb/cv.json --focus fit=runs/text-cv-fit/cv.json
	$(BUILD)/focus cv --data sentiment --cross-site $(TEXT_CV_FLAGS) --out runs/text-sites --folds-out runs/text-sites/folds.tsv
	$(BUILD)/focus cv --data sentiment --cross-site $(TEXT_WIDE_FLAGS) --out runs/text-sites-wide
	$(BUILD)/focus cv --data sentiment --cross-site $(TEXT_NB_FLAGS) --out runs/text-sites-nb
	$(BUILD)/focus cv --data sentiment --cross-site $(TEXT_FIT_FLAGS) --out runs/text-sites-fit
	/usr/bin/python3 bench/text_baselines.py runs/text-sites/folds.tsv --focus plain=runs/text-sites/cv.json \
	  --focus wide=runs/text-sites-wide/cv.json --focus nb=runs/text-sites-nb/cv.json --focus fit=runs/text-sites-fit/cv.json

# Masked-token pretraining (docs/RESULTS_TEXT.md, issue 20): `focus pretrain` on the unlabelled text
# (Moby-Dick, SOTU, SpamAssassin ham; 22 minutes of one thread), then the same 10 folds fine-tuned
# from it, beside from-scratch and TF-IDF + LR / naive Bayes of the same run. ~60 min on 2 cores.
PRETRAIN_FLAGS ?= --corpus moby-dick,sotu,ham --threads 1 --epochs 8 --time-limit-min 22 --max-len 64 \
  --lr 2e-3 --batch 64 --model-config '{"dim": 64, "depth": 2, "heads": 4, "dropout": 0.1}'
FINETUNE_FLAGS ?= --epochs 20 --patience 5 --batch 32 --lr 2e-3 --weight-decay 0.5 --label-smoothing 0.1 \
  --token-dropout 0.1 --threads 1 --model-config '{"dropout": 0.3}'
bench-text-pretrain: configure data
	@tools/install-deps.sh python3-sklearn
	cmake --build $(BUILD) -j $(JOBS) --target focus
	$(BUILD)/focus pretrain $(PRETRAIN_FLAGS) --out runs/text-mlm
	$(BUILD)/focus cv --data sentiment --folds 10 $(TEXT_CV_FLAGS) --out runs/text-cv --folds-out runs/text-cv/folds.tsv
	$(BUILD)/focus cv --data sentiment --folds 10 --init runs/text-mlm/model_best.safetensors $(FINETUNE_FLAGS) --out runs/text-cv-mlm
	/usr/bin/python3 bench/text_baselines.py runs/text-cv/folds.tsv --focus scratch=runs/text-cv/cv.json \
	  --focus pretrained=runs/text-cv-mlm/cv.json --json runs/text-cv-mlm/baselines.json

# Spam (docs/RESULTS_TEXT.md): the SpamAssassin corpus as text (focus text-import spam: GMime +
# libxml2), text-transformer on the random and the time split (SPAM_FLAGS, the word encoder;
# SPAM_FIT_FLAGS, the n-gram branch over the whole text's word-bounded character 1-5 grams,
# TF-IDF, fitted as a linear SVM, scored alone), and the scikit-learn baselines on the same texts
# and splits. ~20 minutes on 2 cores.
SPAM_FLAGS ?= --src-tokenizer word --min-count 2 --max-len 512 --epochs 10 --patience 4 --batch 32 \
  --lr 3e-3 --weight-decay 0.5 --token-dropout 0.1 --threads 2 \
  --model-config '{"dim": 64, "depth": 1, "heads": 2, "dropout": 0.2}'
SPAM_FIT_FLAGS ?= --src-tokenizer char --min-count 1 --max-len 256 --epochs 0 --threads 1 \
  --model-config '{"dim": 32, "depth": 0, "heads": 2, "ngram_buckets": 4000037, "ngram_order": 5, \
  "ngram_idf": true, "ngram_len": 4000, "ngram_boundary": " ", "ngram_fit": 1, \
  "ngram_fit_loss": "squared_hinge"}'
# Text classification speed against the PyTorch 1.13 twin (bench/compare_text.py, issue 20):
# batch-1 inference on 64 token ids (median, p99, requests/s) and training tokens/s, interleaved
# rounds at 1 and 2 threads; ~3 minutes (QUICK=1: ~40 s).
bench-text-speed: configure data
	@tools/install-deps.sh python3-torch
	cmake --build $(BUILD) -j $(JOBS) --target focus
	/usr/bin/python3 bench/compare_text.py --build $(BUILD) $(if $(QUICK),--quick)

bench-spam: configure data
	@tools/install-deps.sh python3-sklearn
	cmake --build $(BUILD) -j $(JOBS) --target focus
	$(BUILD)/focus text-import spam --out runs/spam
	for split in random time; do \
	  $(BUILD)/focus train --task text --train runs/spam/$$split/train.tsv --valid runs/spam/$$split/valid.tsv \
	    --test runs/spam/$$split/test.tsv --out runs/spam-$$split $(SPAM_FLAGS) || exit 1; \
	  $(BUILD)/focus train --task text --train runs/spam/$$split/train.tsv --valid runs/spam/$$split/valid.tsv \
	    --test runs/spam/$$split/test.tsv --out runs/spam-fit-$$split $(SPAM_FIT_FLAGS) || exit 1; done
	/usr/bin/python3 bench/split_baselines.py runs/spam --focus random=runs/spam-random/test_metrics.json \
	  --focus time=runs/spam-time/test_metrics.json --focus random:fit=runs/spam-fit-random/test_metrics.json \
	  --focus time:fit=runs/spam-fit-time/test_metrics.json --json runs/spam/baselines.json

fixtures:
	@tools/install-deps.sh python3-torch python3-numpy
	/usr/bin/python3 tools/make_fixtures.py tests/fixtures

# One allocation over 1 GiB is an error under ASan (a reader that trusts a length field): the
# mutation tests' own allocation watch (tests/support/mutate.hpp) is off under ASan.
asan:
	ASAN_OPTIONS=max_allocation_size_mb=1024 $(MAKE) test BUILD=build-asan BUILD_TYPE=RelWithDebInfo CMAKE_FLAGS="-DFOCUS_ASAN=ON -DFOCUS_UBSAN=ON"

# libFuzzer targets (fuzz/, docs/FUZZING.md): built with clang into build-fuzz/, each run for
# FUZZ_SECONDS; fails when a target found a crash (the input is kept in build-fuzz/artifacts/).
fuzz:
	@tools/install-deps.sh clang-14 libclang-rt-14-dev
	FUZZ_SECONDS=$(FUZZ_SECONDS) fuzz/run.sh

clean:
	rm -rf $(BUILD) build-asan build-fuzz
