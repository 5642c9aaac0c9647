package slack

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	goslack "github.com/slack-go/slack"
	"github.com/stretchr/testify/require"
)

func sampleRelease() ReleaseView {
	return ReleaseView{
		ID:          "release-shop-1.2.3",
		Runbook:     "shop",
		Version:     "1.2.3",
		Phase:       "awaiting_approval",
		Stage:       "prod",
		Environment: "production",
		Requester:   "carol@example.com",
		Components:  []ComponentView{{Name: "api", Version: "1.2.3"}, {Name: "web", Version: "1.2.4"}},
		Risk:        &RiskView{Score: 72, Level: "high", Factors: []string{"churn 1200 lines", "coverage fell 4%"}},
		Targets: []TargetView{
			{Stage: "staging", Name: "eu-1", State: "deployed"},
			{Stage: "staging", Name: "us-1", State: "deployed"},
			{Stage: "prod", Name: "eu-1", State: "pending"},
		},
		Approvals: []ApprovalView{
			{Gate: "security", Before: "staging", Roles: []string{"security"}, Required: 1, Approved: 1, State: GateApproved,
				Decisions: []DecisionView{{Actor: "sam", Decision: "approve", At: time.Date(2026, 3, 2, 9, 5, 0, 0, time.UTC)}}},
			{Gate: "prod-signoff", Before: "prod", Roles: []string{"release-manager", "sre"}, Required: 2, Approved: 1, State: GateWaiting,
				Decisions: []DecisionView{{Actor: "alice", Decision: "approve", Comment: "looks fine", At: time.Date(2026, 3, 2, 14, 2, 30, 0, time.FixedZone("CET", 3600))}},
				Why:       "CAB added because impact 72 >= 60",
				PreMortem: []string{"checkout latency regresses under the EU peak"}},
		},
		StatusURL:   "https://trainyard.example/api/v1/releases/release-shop-1.2.3",
		TemporalURL: "http://localhost:8233/namespaces/default/workflows/release-shop-1.2.3",
	}
}

// texts is every piece of text in blocks, one per line, as a person reads it.
func texts(blocks []goslack.Block) string {
	var out []string
	add := func(t *goslack.TextBlockObject) {
		if t != nil {
			out = append(out, t.Text)
		}
	}
	for _, b := range blocks {
		switch b := b.(type) {
		case *goslack.HeaderBlock:
			add(b.Text)
		case *goslack.SectionBlock:
			add(b.Text)
			for _, f := range b.Fields {
				add(f)
			}
		case *goslack.ContextBlock:
			for _, e := range b.ContextElements.Elements {
				if t, ok := e.(*goslack.TextBlockObject); ok {
					add(t)
				}
			}
		case *goslack.ActionBlock:
			for _, e := range b.Elements.ElementSet {
				if btn, ok := e.(*goslack.ButtonBlockElement); ok {
					add(btn.Text)
				}
			}
		}
	}
	return strings.Join(out, "\n")
}

func buttons(blocks []goslack.Block) []*goslack.ButtonBlockElement {
	var out []*goslack.ButtonBlockElement
	for _, b := range blocks {
		if ab, ok := b.(*goslack.ActionBlock); ok {
			for _, e := range ab.Elements.ElementSet {
				if btn, ok := e.(*goslack.ButtonBlockElement); ok {
					out = append(out, btn)
				}
			}
		}
	}
	return out
}

func buttonKinds(blocks []goslack.Block) []ActionKind {
	var kinds []ActionKind
	for _, b := range buttons(blocks) {
		kinds = append(kinds, ActionKind(strings.TrimPrefix(b.ActionID, actionPrefix)))
	}
	return kinds
}

// requireWithinSlackLimits checks the Block Kit limits Slack enforces by refusing the message.
func requireWithinSlackLimits(t *testing.T, blocks []goslack.Block) {
	t.Helper()
	require.LessOrEqual(t, len(blocks), 50, "blocks per message")
	runes := func(t *goslack.TextBlockObject) int {
		if t == nil {
			return 0
		}
		return utf8.RuneCountInString(t.Text)
	}
	for _, b := range blocks {
		require.LessOrEqual(t, len(b.ID()), 255, "block_id")
		switch b := b.(type) {
		case *goslack.HeaderBlock:
			require.LessOrEqual(t, runes(b.Text), 150, "header")
		case *goslack.SectionBlock:
			require.LessOrEqual(t, runes(b.Text), 3000, "section text")
			require.LessOrEqual(t, len(b.Fields), 10, "section fields")
			for _, f := range b.Fields {
				require.LessOrEqual(t, runes(f), 2000, "section field")
			}
		case *goslack.ContextBlock:
			for _, e := range b.ContextElements.Elements {
				if tb, ok := e.(*goslack.TextBlockObject); ok {
					require.LessOrEqual(t, runes(tb), 2000, "context text")
				}
			}
		case *goslack.ActionBlock:
			for _, e := range b.Elements.ElementSet {
				btn := e.(*goslack.ButtonBlockElement)
				require.LessOrEqual(t, runes(btn.Text), 75, "button text")
				require.LessOrEqual(t, len(btn.ActionID), 255, "action_id")
				require.LessOrEqual(t, len(btn.Value), MaxValueLen, "button value")
				if btn.Confirm != nil {
					require.LessOrEqual(t, runes(btn.Confirm.Title), 100, "confirm title")
					require.LessOrEqual(t, runes(btn.Confirm.Text), 300, "confirm text")
				}
			}
		}
	}
	// What Slack receives decodes back into the same blocks.
	raw, err := json.Marshal(goslack.Blocks{BlockSet: blocks})
	require.NoError(t, err)
	var back goslack.Blocks
	require.NoError(t, json.Unmarshal(raw, &back))
	require.Len(t, back.BlockSet, len(blocks))
}

func TestReleaseBlocks_ShowsPhaseStageTargetsRiskAndLinks(t *testing.T) {
	t.Parallel()
	v := sampleRelease()
	v.Phase = "deploying"
	blocks := ReleaseBlocks(v)
	requireWithinSlackLimits(t, blocks)
	text := texts(blocks)

	for _, want := range []string{
		":rocket: Release shop 1.2.3",
		"*Phase*\ndeploying",
		"*Stage*\nprod (production)",
		"*Requested by*\ncarol@example.com",
		"*Risk*\n72 (high)",
		"• api `1.2.3`",
		"• web `1.2.4`",
		"*staging*: :white_check_mark: eu-1 deployed · :white_check_mark: us-1 deployed",
		"*prod*: :white_circle: eu-1 pending",
		"Risk factors: churn 1200 lines; coverage fell 4%",
		"Waiting for approval: *prod-signoff* (1 of 2)",
		"<https://trainyard.example/api/v1/releases/release-shop-1.2.3|Status>",
		"<http://localhost:8233/namespaces/default/workflows/release-shop-1.2.3|Temporal UI>",
	} {
		require.Contains(t, text, want)
	}
	require.NotContains(t, text, "Failure")
}

func TestReleaseBlocks_ShowsTheFailure(t *testing.T) {
	t.Parallel()
	v := sampleRelease()
	v.Phase, v.Failure = "failed", "smoke check /healthz answered 503"
	text := texts(ReleaseBlocks(v))
	require.Contains(t, text, ":x: Release shop 1.2.3")
	require.Contains(t, text, ":x: *Failure:* smoke check /healthz answered 503")
}

func TestReleaseBlocks_OffersConfirmedAbortAndRollbackWhileTheyApply(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		phase string
		want  []ActionKind
	}{
		{"pending", []ActionKind{KindAbort}},
		{"awaiting_approval", []ActionKind{KindAbort}},
		{"frozen", []ActionKind{KindAbort}},
		{"deploying", []ActionKind{KindAbort, KindRollback}},
		{"stabilizing", []ActionKind{KindAbort, KindRollback}},
		{"rolling_back", nil},
		{"succeeded", nil},
		{"rolled_back", nil},
		{"rejected", nil},
		{"aborted", nil},
		{"failed", nil},
	} {
		t.Run(tc.phase, func(t *testing.T) {
			t.Parallel()
			v := sampleRelease()
			v.Phase = tc.phase
			blocks := ReleaseBlocks(v)
			require.Equal(t, tc.want, buttonKinds(blocks))
			for _, b := range buttons(blocks) {
				require.NotNil(t, b.Confirm, "%s asks for confirmation", b.ActionID)
				require.Equal(t, goslack.StyleDanger, b.Confirm.Style)
				require.Equal(t, goslack.StyleDanger, b.Style)
				a, err := ParseInteraction(blockActionsPayload(t, b.ActionID, b.Value))
				require.NoError(t, err)
				require.Equal(t, v.ID, a.ReleaseID)
				require.Empty(t, a.Gate)
			}
		})
	}
}

func TestReleaseBlocks_EscapesWhatPeopleTyped(t *testing.T) {
	t.Parallel()
	v := sampleRelease()
	v.Requester = "<!channel> & co"
	v.Failure = "<https://evil.example|click here>"
	v.Components = []ComponentView{{Name: "<@U123>", Version: "1.0"}}
	v.StatusURL = "https://x.example/a|<!here>"
	text := texts(ReleaseBlocks(v))
	require.NotContains(t, text, "<!channel>")
	require.NotContains(t, text, "<https://evil.example")
	require.NotContains(t, text, "<@U123>")
	require.NotContains(t, text, "<!here>")
	require.Contains(t, text, "&lt;!channel&gt; &amp; co")
	require.Contains(t, text, "&lt;https://evil.example|click here&gt;")
}

func TestReleaseBlocks_StaysWithinSlackLimitsForHugeReleases(t *testing.T) {
	t.Parallel()
	v := sampleRelease()
	v.Runbook = strings.Repeat("r", 300)
	v.Failure = strings.Repeat("stack frame\n", 1000)
	v.Requester = strings.Repeat("q", 3000)
	v.Components = nil
	for i := range 200 {
		v.Components = append(v.Components, ComponentView{Name: fmt.Sprintf("component-%03d", i), Version: "1.0.0"})
	}
	v.Targets = nil
	for i := range 500 {
		v.Targets = append(v.Targets, TargetView{Stage: fmt.Sprintf("stage-%d", i%7), Name: fmt.Sprintf("target-%03d", i), State: "running"})
	}
	v.Risk.Factors = []string{strings.Repeat("f", 5000)}
	blocks := ReleaseBlocks(v)
	requireWithinSlackLimits(t, blocks)
	require.Contains(t, texts(blocks), "… and 180 more")

	v.Approvals[1].PreMortem = []string{strings.Repeat("p", 4000), "x"}
	v.Approvals[1].Why = strings.Repeat("w", 4000)
	requireWithinSlackLimits(t, ApprovalBlocks(v, "prod-signoff"))
}

func TestReleaseBlocks_LeavesOutButtonsItCannotEncode(t *testing.T) {
	t.Parallel()
	v := sampleRelease()
	v.Phase = "deploying"
	v.ID = strings.Repeat("x", MaxValueLen)
	require.Empty(t, buttons(ReleaseBlocks(v)))
	v.Phase = "awaiting_approval"
	blocks := ApprovalBlocks(v, "prod-signoff")
	require.Empty(t, buttons(blocks))
	require.Contains(t, texts(blocks), "through the Trainyard API")
}

func TestApprovalBlocks_AsksWithEverythingAnApproverNeeds(t *testing.T) {
	t.Parallel()
	v := sampleRelease()
	blocks := ApprovalBlocks(v, "prod-signoff")
	requireWithinSlackLimits(t, blocks)
	text := texts(blocks)

	for _, want := range []string{
		":raised_hand: Approval needed: prod-signoff",
		"*carol@example.com* asks to ship *shop* `1.2.3` into stage *prod* (production).",
		"*What ships*\n• api `1.2.3`\n• web `1.2.4`",
		"*Risk:* 72 (high)\n• churn 1200 lines\n• coverage fell 4%",
		"*Why this approval:* CAB added because impact 72 &gt;= 60",
		"*What could go wrong*\n• checkout latency regresses under the EU peak",
		"Gates passed: security",
		"Who may approve: release-manager, sre. Approvals: 1 of 2.",
		":white_check_mark: Approved by *alice* at 13:02 UTC: looks fine",
	} {
		require.Contains(t, text, want)
	}

	require.Equal(t, []ActionKind{KindApprove, KindReject}, buttonKinds(blocks))
	approve, reject := buttons(blocks)[0], buttons(blocks)[1]
	require.NotNil(t, approve.Confirm, "approving asks for confirmation")
	require.Contains(t, approve.Confirm.Text.Text, "shop 1.2.3")
	require.Equal(t, goslack.StylePrimary, approve.Style)
	require.Nil(t, reject.Confirm, "rejecting opens a modal instead")
	require.Equal(t, goslack.StyleDanger, reject.Style)
}

func TestApprovalBlocks_ReplacesButtonsWithTheDecision(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		state string
		ds    []DecisionView
		want  []string
	}{
		{
			name:  "approved by a quorum",
			state: GateApproved,
			ds: []DecisionView{
				{Actor: "alice", Decision: "approve", At: time.Date(2026, 3, 2, 14, 2, 0, 0, time.UTC)},
				{Actor: "bob", Decision: "approve", At: time.Date(2026, 3, 2, 14, 9, 0, 0, time.UTC)},
			},
			want: []string{
				":white_check_mark: Approved: prod-signoff",
				"Approved by *alice* at 14:02 UTC",
				"Approved by *bob* at 14:09 UTC",
				"Approvals: 2 of 2.",
			},
		},
		{
			name:  "rejected",
			state: GateRejected,
			ds:    []DecisionView{{Actor: "bob", Decision: "reject", Comment: "error budget is gone", At: time.Date(2026, 3, 2, 9, 15, 0, 0, time.UTC)}},
			want: []string{
				":no_entry_sign: Rejected: prod-signoff",
				":no_entry_sign: Rejected by *bob* at 09:15 UTC: error budget is gone",
			},
		},
		{
			name:  "timed out",
			state: GateTimedOut,
			want:  []string{":hourglass: Timed out: prod-signoff"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := sampleRelease()
			g := &v.Approvals[1]
			g.State, g.Decisions = tt.state, tt.ds
			g.Approved = 0
			for _, d := range tt.ds {
				if d.Decision == "approve" {
					g.Approved++
				}
			}
			blocks := ApprovalBlocks(v, "prod-signoff")
			require.Empty(t, buttons(blocks), "no buttons once decided")
			text := texts(blocks)
			for _, w := range tt.want {
				require.Contains(t, text, w)
			}
		})
	}
}

func TestApprovalBlocks_WaitsWithoutButtonsUntilTheGateOpens(t *testing.T) {
	t.Parallel()
	v := sampleRelease()
	v.Approvals[1].State = GatePending
	blocks := ApprovalBlocks(v, "prod-signoff")
	require.Empty(t, buttons(blocks))
	require.Contains(t, texts(blocks), "opens when the release reaches it")
}

func TestApprovalBlocks_SaysWhenTheGateIsUnknown(t *testing.T) {
	t.Parallel()
	blocks := ApprovalBlocks(sampleRelease(), "cab")
	require.Empty(t, buttons(blocks))
	require.Contains(t, texts(blocks), "has no approval gate *cab*")
}

func TestFallbackText_SaysWhatTheNotificationShows(t *testing.T) {
	t.Parallel()
	v := sampleRelease()
	require.Equal(t, "Release shop 1.2.3: awaiting approval, stage prod", FallbackText(v))
	v.Phase, v.Failure = "failed", "target <eu-1> unreachable"
	require.Equal(t, "Release shop 1.2.3: failed, stage prod: target &lt;eu-1&gt; unreachable", FallbackText(v))
	require.Equal(t, "Approval needed (prod-signoff) for shop 1.2.3 requested by carol@example.com", ApprovalFallbackText(v, "prod-signoff"))
}

func TestThreadText_EscapesAndBoundsTheEvent(t *testing.T) {
	t.Parallel()
	require.Equal(t, "stage prod started &lt;!here&gt;", ThreadText("stage prod started <!here>"))
	require.Equal(t, maxSectionText, utf8.RuneCountInString(ThreadText(strings.Repeat("é", 5000))))
}

func TestReleaseBlocks_ShowsWhoPausedTheReleaseAndWhy(t *testing.T) {
	t.Parallel()
	v := sampleRelease()
	v.Phase, v.PausedBy, v.PauseReason = "paused", "alice", "payments <asked> to wait"
	blocks := ReleaseBlocks(v)
	text := texts(blocks)
	require.Contains(t, text, ":double_vertical_bar: Release shop 1.2.3")
	require.Contains(t, text, "Paused by *alice*: payments &lt;asked&gt; to wait")
	require.Equal(t, []ActionKind{KindAbort}, buttonKinds(blocks))
}

func TestApprovalBlocks_CountsReadinessGatesAsPassed(t *testing.T) {
	t.Parallel()
	v := sampleRelease()
	v.Gates = []GateView{
		{Name: "image-scan", State: "passed"},
		{Name: "coverage", State: "waived"},
		{Name: "perf", State: "skipped"},
	}
	v.Approvals[1].DistinctRoles = []string{"release-manager", "sre"}
	text := texts(ApprovalBlocks(v, "prod-signoff"))
	require.Contains(t, text, "Gates passed: image-scan, coverage (waived), security")
	require.NotContains(t, text, "perf")
	require.Contains(t, text, "(release-manager, sre each by a different person)")
}

func TestEventBatches_PacksEventsIntoFewRepliesWithinSlacksLimit(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 2, 14, 2, 5, 0, time.FixedZone("CET", 3600))
	require.Equal(t, []EventBatch{{Text: "`13:02:05` stage prod started\n`13:02:05` deploying &lt;eu-1&gt; now", Events: 2}},
		EventBatches([]EventView{{At: at, Message: "stage prod started"}, {At: at, Message: "deploying <eu-1>\nnow"}}, 0))
	require.Nil(t, EventBatches(nil, 0))
	require.Equal(t, []EventBatch{{Text: "_… 3 earlier event(s) are in the release status._"}}, EventBatches(nil, 3))

	var many []EventView
	for i := range 400 {
		many = append(many, EventView{At: at, Message: fmt.Sprintf("event %03d %s", i, strings.Repeat("x", 40))})
	}
	many = append(many, EventView{At: at, Message: strings.Repeat("é", 5000)})
	out := EventBatches(many, 7)
	require.Greater(t, len(out), 1)
	events, lines := 0, 0
	for _, o := range out {
		require.LessOrEqual(t, utf8.RuneCountInString(o.Text), maxSectionText)
		events += o.Events
		lines += strings.Count(o.Text, "\n") + 1
	}
	require.Equal(t, len(many), events, "every event is in one of the replies")
	require.Equal(t, len(many)+1, lines, "one line per event, and the note about the 7 left out")
}

func TestBroadcastText_SaysWhatHappenedAndWhy(t *testing.T) {
	t.Parallel()
	v := sampleRelease()
	v.Phase, v.Failure = "rolling_back", "prod-b: health check <failed>"
	require.Equal(t, ":rewind: *Release shop 1.2.3 rolling back*: prod-b: health check &lt;failed&gt;", BroadcastText(v))
}

func TestOperatorConfirmBlocks_AsksBeforeAbortingOrRollingBack(t *testing.T) {
	t.Parallel()
	for _, kind := range []ActionKind{KindAbort, KindRollback} {
		blocks, err := OperatorConfirmBlocks(kind, "release-shop-1.2.3", "error rate climbing")
		require.NoError(t, err)
		requireWithinSlackLimits(t, blocks)
		require.Contains(t, texts(blocks), "Reason: error rate climbing")
		require.Equal(t, []ActionKind{kind, KindCancel}, buttonKinds(blocks))
		do := buttons(blocks)[0]
		require.NotNil(t, do.Confirm)
		a, err := ParseInteraction(blockActionsPayload(t, do.ActionID, do.Value))
		require.NoError(t, err)
		require.Equal(t, "error rate climbing", a.Reason)
		c, err := ParseInteraction(blockActionsPayload(t, buttons(blocks)[1].ActionID, buttons(blocks)[1].Value))
		require.NoError(t, err)
		require.Equal(t, KindCancel, c.Kind)
		require.Equal(t, "release-shop-1.2.3", c.ReleaseID)
	}
	_, err := OperatorConfirmBlocks(KindAbort, "release-shop-1.2.3", strings.Repeat("é", 400))
	require.Error(t, err)
}

func TestApprovalBlocks_ApprovingAcknowledgesWhatCouldGoWrong(t *testing.T) {
	t.Parallel()
	v := sampleRelease()
	approve := buttons(ApprovalBlocks(v, "prod-signoff"))[0]
	require.Contains(t, approve.Confirm.Text.Text, "acknowledge the 1 expected failure mode(s)")
	v.Approvals[1].PreMortem = nil
	approve = buttons(ApprovalBlocks(v, "prod-signoff"))[0]
	require.NotContains(t, approve.Confirm.Text.Text, "acknowledge")
}
