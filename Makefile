# The two commands: `make dev` runs the whole system, `make test` runs every test.
SHELL := /bin/bash
GO ?= go
GOTEST_FLAGS ?= -count=1 -timeout 40m

.PHONY: dev test build lint bench clean record-histories

## dev: build what is needed and run Temporal, PostgreSQL, the workers and the API
dev: bin/temporal build
	./bin/trainyard dev

## build: the trainyard binary in bin/
build:
	$(GO) build -o bin/trainyard ./cmd/trainyard

bin/temporal:
	./scripts/temporal-cli.sh

## test: vet, then every test against real Temporal and PostgreSQL
test: bin/temporal
	./scripts/test-deps.sh
	$(GO) vet ./...
	@unformatted="$$(gofmt -l $$(git ls-files '*.go'))"; if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) test $(GOTEST_FLAGS) ./...

## lint: formatting, vet, staticcheck and workflowcheck
lint:
	gofmt -l $$(git ls-files '*.go') | (! grep .)
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...
	$(GO) run go.temporal.io/sdk/contrib/tools/workflowcheck@v0.6.0 ./workflows/...

## bench: the speed targets in tests/ (API vs raw SDK, Slack round trip, readiness, rollout, breach-to-rollback)
bench: bin/temporal
	./scripts/test-deps.sh
	$(GO) test -run '^$$' -bench 'StartRelease|Approve' -benchtime 400x -count 1 ./tests/
	$(GO) test -run '^$$' -bench 'SlackInteraction' -benchtime 200x -count 1 ./tests/
	$(GO) test -run '^$$' -bench 'ReadinessPhase|RolloutOverhead|BreachToRollback' -benchtime 5x -count 1 ./tests/

clean:
	rm -rf bin

# The end-to-end tests whose releases are kept as replay histories, and the file prefix of
# this recording (one per workflow version, so older histories stay beside newer ones).
HISTORY_TESTS ?= TestSlack_|TestGraph_|TestRelease_SucceedsThroughTheAPI|TestRelease_DeployFailureRollsBackInReverse|TestReadiness_AGateWaiverLetsTheNextReleaseThrough|TestLock_OneReleaseAtATimeInAnEnvironment|TestStabilization|TestRollout_
HISTORY_PREFIX ?= v4-

## record-histories: record release histories for the replay tests (after a deliberate, versioned change)
record-histories: bin/temporal
	./scripts/test-deps.sh
	TRAINYARD_RECORD_HISTORIES=$(HISTORY_PREFIX) $(GO) test -count=1 -run '$(HISTORY_TESTS)' ./tests/
