package tests

// Deploy and rollback commands of the end-to-end runbooks. They keep their traces in a
// folder per release under the site's working directory:
//
//	ops.log              every deploy and rollback, in the order they ran
//	<target>.attempts    TRAINYARD_ATTEMPT of every deploy run that started
//	<target>.done        one line per deploy run that finished
//	<target>.version     what is deployed now
//
// The version picks the behaviour: *-slow deploys take 4 s, *-hang hangs stg-a's first
// attempt, *-broken fails on target prod-b.
const deployScript = `
d="$TRAINYARD_RELEASE"; mkdir -p "$d"
echo "deploy $TRAINYARD_TARGET" >> "$d/ops.log"
echo "$TRAINYARD_ATTEMPT" >> "$d/$TRAINYARD_TARGET.attempts"
case "$TRAINYARD_VERSION" in
  *-slow) touch "$d/$TRAINYARD_TARGET.running"; sleep 4 ;;
esac
case "$TRAINYARD_VERSION/$TRAINYARD_TARGET" in
  *-hang/stg-a) touch "$d/$TRAINYARD_TARGET.running.$TRAINYARD_ATTEMPT"; if [ "$TRAINYARD_ATTEMPT" = 1 ]; then sleep 120; fi ;;
esac
case "$TRAINYARD_VERSION/$TRAINYARD_TARGET" in
  *-broken/prod-b) echo "prod-b: health check failed on $TRAINYARD_VERSION" >&2; exit 1 ;;
esac
echo "$TRAINYARD_VERSION" > "$d/$TRAINYARD_TARGET.version"
echo done >> "$d/$TRAINYARD_TARGET.done"
echo "deployed $TRAINYARD_VERSION to $TRAINYARD_TARGET"
`

const rollbackScript = `
d="$TRAINYARD_RELEASE"; mkdir -p "$d"
echo "rollback $TRAINYARD_TARGET" >> "$d/ops.log"
echo "${TRAINYARD_PREVIOUS_VERSION:-none}" > "$d/$TRAINYARD_TARGET.version"
`

func stages() string {
	target := func(name string) string {
		return `      - name: ` + name + `
        kind: command
        site: e2e
        timeout: 3m
        heartbeat: 3s
        deploy: *deploy
        rollback: *rollback
`
	}
	return `stages:
  - name: staging
    environment: staging
    targets:
` + target("stg-a") + target("stg-b") + `  - name: production
    environment: production
    targets:
` + target("prod-a") + target("prod-b")
}

func scripts() string {
	indent := func(s string) string {
		out := ""
		for _, line := range splitLines(s) {
			out += "  " + line + "\n"
		}
		return out
	}
	return "x-scripts:\n  deploy: &deploy |\n" + indent(indent(deployScript)) + "  rollback: &rollback |\n" + indent(indent(rollbackScript))
}

func splitLines(s string) []string {
	var lines []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			if i > start {
				lines = append(lines, s[start:i])
			}
			start = i + 1
		}
	}
	if start < len(s) {
		lines = append(lines, s[start:])
	}
	return lines
}

var testRunbooks = map[string]string{
	// shop: the hello example's shape, with an approval before production.
	"shop": scripts() + `name: shop
stabilization: 2s
rollbackAuthority: [release-manager]
approvals:
  - name: prod-signoff
    before: production
    roles: [release-manager]
    timeout: 1h
` + stages(),
	// auto: no approval, for the crash tests.
	"auto": scripts() + `name: auto
stabilization: 1s
` + stages(),
	// frozen and waived: production is behind a freeze calendar made through the API.
	"frozen": scripts() + `name: frozen
stabilization: 1s
freezes: [e2e-window]
` + stages(),
	"waived": scripts() + `name: waived
stabilization: 1s
freezes: [e2e-forever]
` + stages(),
	// scanned: a scan report gate that waits for CI's report, and a coverage gate.
	"scanned": scripts() + `name: scanned
stabilization: 1s
readiness:
  gates:
    - {name: image-scan, type: scanReport, maxSeverity: critical, timeout: 1m}
    - {name: coverage, type: coverage, minCoverage: 80}
` + stages(),
	// policed: the e2e policy file says its releases need a scan report before they start.
	"policed": scripts() + `name: policed
stabilization: 1s
` + stages(),
	// slackshop: shop, followed in a Slack channel (slack_test.go).
	"slackshop": scripts() + `name: slackshop
channel: "#releases-e2e"
stabilization: 1s
rollbackAuthority: [release-manager]
approvals:
  - name: prod-signoff
    before: production
    roles: [release-manager]
    timeout: 1h
` + stages(),
	// lockstep: like auto, to queue behind auto's releases for the production lock.
	"lockstep": scripts() + `name: lockstep
stabilization: 1s
` + stages(),
	// rollout and rollout-bench: see tests/rollout_test.go.
	"rollout":       rolloutRunbook(),
	"rollout-bench": rolloutBenchRunbook(),
	// regions: staging, then two regions at once on two site workers. Each region's deploy
	// waits for the other's to be running, so the release only succeeds if they overlap.
	"regions": `name: regions
x-meet: &meet |
  d="../shared/$TRAINYARD_RELEASE"; mkdir -p "$d"; touch "$d/$TRAINYARD_TARGET.running"
  case "$TRAINYARD_TARGET" in eu-a) other=us-a ;; *) other=eu-a ;; esac
  i=0; while [ ! -e "$d/$other.running" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done
  [ -e "$d/$other.running" ] || { echo "$other never ran alongside $TRAINYARD_TARGET" >&2; exit 1; }
  echo "deployed $TRAINYARD_TARGET alongside $other"
stabilization: 1s
stages:
  - name: staging
    environment: staging
    targets:
      - {name: stg, kind: command, site: e2e, deploy: 'echo staged', rollback: 'echo undone'}
  - name: eu
    environment: production-eu
    after: [staging]
    targets:
      - {name: eu-a, kind: command, site: e2e, timeout: 2m, deploy: *meet, rollback: 'echo undone'}
  - name: us
    environment: production-us
    after: [staging]
    targets:
      - {name: us-a, kind: command, site: lab, timeout: 2m, deploy: *meet, rollback: 'echo undone'}
`,
	// bench: held at a two-person approval before anything deploys.
	"bench": scripts() + `name: bench
approvals:
  - name: go
    before: staging
    roles: [release-manager]
    count: 2
    timeout: 2h
` + stages(),
}
