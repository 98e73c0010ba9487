# kgate — the two commands a newcomer needs are `make run` and `make test`.

GO ?= go
PKGS := ./...

.PHONY: run test vet fmt-check build bench golden load test-kube kube-bin browser-bin bench-kube generate

## run: kgate local on the examples: hello world at http://hello.default.127.0.0.1.nip.io:8080
run: build
	bin/kgate local -f examples

## test: everything CI runs: formatting, vet, and every test with the race detector, the Kubernetes
## ones against a real kube-apiserver + etcd built from the upstream modules first (pinned; ~8 min the
## first time, then cached in .cache/kube; KGATE_KUBE=0 skips those tests), the live page's in a headless
## Chromium (Debian's chromium, installed by hack/chromium.sh when missing; KGATE_BROWSER=0 skips them);
## then every fuzz target for a few seconds (fuzz-brief).
test: fmt-check vet kube-bin browser-bin
	$(GO) test -race -count=1 -timeout 20m $(PKGS)
	@$(MAKE) --no-print-directory fuzz-brief

kube-bin:
	@if [ "$$KGATE_KUBE" != "0" ]; then test/kube/build.sh; fi

browser-bin:
	@if [ "$$KGATE_BROWSER" != "0" ]; then hack/chromium.sh >/dev/null; fi

## fuzz: every fuzz target in turn, FUZZTIME each (make fuzz FUZZTIME=10m for a long run; FUZZ=regexp
## picks targets); a failing input lands in the target's testdata/fuzz/ (docs/fuzzing.md).
FUZZTIME ?= 1m
.PHONY: fuzz fuzz-brief
fuzz:
	GO=$(GO) hack/fuzz.sh $(FUZZTIME)

## fuzz-brief: every fuzz target for 5 s, past its committed corpus into new inputs: what make test runs.
fuzz-brief:
	GO=$(GO) hack/fuzz.sh 5s

vet:
	$(GO) vet $(PKGS)

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

build:
	$(GO) build -o bin/kgate ./cmd/kgate

## bench: the benchmarks behind docs/performance.md.
bench: bench-tls bench-scale
	$(GO) test -run '^$$' -bench Propagation -benchmem -count 3 ./xds
	$(GO) test -run '^$$' -bench 'Translate|BenchmarkService$$|HostIndex' -benchmem -benchtime 5x ./translator
	$(GO) test -run '^$$' -bench Tick10k -cpu 1 -count 3 ./autoscale/
	$(GO) test -run TestColdRequestIsHeldAndAnswered -v -count 3 ./test/coldstart
	$(GO) test -run '^$$' -bench Overhead -benchtime 1x -count 3 ./activator

## bench-tls: mutual TLS against plaintext on propagation and load reports, interleaved runs compared with
## benchstat (hack/bench-tls.sh; docs/performance.md): COUNT=20 rounds by default, about 10 minutes.
.PHONY: bench-tls
bench-tls:
	GO=$(GO) hack/bench-tls.sh $(COUNT)

## golden: regenerate golden files after an intended output change.
golden:
	$(GO) test ./translator ./watcher/knative -update

## load: the seeds' hey -z 30s -c 50 against kgate local (figures in docs/performance.md).
load:
	test/load/run.sh

## test-kube: only the tests against a real kube-apiserver + etcd.
test-kube: kube-bin
	$(GO) test -count=1 ./test/kube/ ./test/kubemode/ ./deploy/kube/

## bench-kube: the Kubernetes-mode benchmark (docs/performance.md): BENCH_SERVICES (1,000) Services on a real
## API server; make bench-kube BENCH_SERVICES=10000 for issue 17's fleet (long; by hand, never in CI).
## KGATE_BENCH_LOG_LEVEL=debug logs each round's split; KGATE_BENCH_PROFILING=1 serves the controller's profiles.
BENCH_SERVICES ?= 1000
bench-kube: kube-bin
	KGATE_BENCH_SERVICES=$(BENCH_SERVICES) $(GO) test -count=1 -v -timeout 120m -run TestControllerAtScale ./test/kubemode/ | grep -E 'bench_test|^(ok|FAIL)'

## bench-scale: the dev gateway, the activator and grpc-go's xDS client each sync 10,000 Services from a
## control plane over mutual TLS with the default limits (test/scale; docs/performance.md).
## SCALE_SERVICES=N serves another fleet; go test runs the same checks at 300.
SCALE_SERVICES ?= 10000
.PHONY: bench-scale
bench-scale:
	KGATE_SCALE_SERVICES=$(SCALE_SERVICES) $(GO) test -count=1 -run '^$$' -bench . -benchtime 3x -timeout 30m ./test/scale

## generate: the API types' deep-copy functions and the serving.knative.dev CRDs (deploy/install), from the
## kubebuilder markers in api/serving/v1, api/serving/v1beta1 (DomainMapping) and api/networking/v1alpha1
## (ClusterDomainClaim); crdtrim then shrinks the
## embedded PodSpec (docs/kubernetes-crds.md).
generate:
	$(GO) tool controller-gen object paths=./api/serving/v1 paths=./api/serving/v1beta1 paths=./api/networking/v1alpha1 \
		crd:generateEmbeddedObjectMeta=true output:crd:dir=deploy/install
	$(GO) run ./api/serving/v1/internal/crdtrim deploy/install/serving.knative.dev_*.yaml
