package slack

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	goslack "github.com/slack-go/slack"
)

// ReleaseView is what the Slack messages show of a release; callers fill it from the
// workflow's status. Phase, target State and approval State use the workflow's values
// (deploying, awaiting_approval, …; deployed, running, …; pending, waiting, approved, …).
type ReleaseView struct {
	ID          string
	Runbook     string
	Version     string
	Phase       string
	Stage       string
	Environment string
	Requester   string
	Components  []ComponentView
	Risk        *RiskView
	Targets     []TargetView
	Approvals   []ApprovalView
	Failure     string
	StatusURL   string
	TemporalURL string
	// Gates are the readiness gates and their verdicts (passed, waived, failed, …).
	Gates []GateView
	// PausedBy and PauseReason say who holds a paused release, and why.
	PausedBy    string
	PauseReason string
}

// GateView is one readiness gate's verdict.
type GateView struct {
	Name    string
	State   string
	Summary string
}

// EventView is one line of the release's timeline.
type EventView struct {
	At      time.Time
	Message string
}

// ComponentView is one component that ships.
type ComponentView struct {
	Name    string
	Version string
}

// RiskView is the release's risk score and what drove it.
type RiskView struct {
	Score   int
	Level   string
	Factors []string
}

// TargetView is one deploy target's state.
type TargetView struct {
	Stage string
	Name  string
	State string
}

// ApprovalView is one approval gate. Why says why the gate exists ("CAB added because impact
// 72 >= 60"); PreMortem lists what could go wrong.
type ApprovalView struct {
	Gate     string
	Before   string
	Roles    []string
	Required int
	// DistinctRoles must each be held by a different approver.
	DistinctRoles []string
	Approved      int
	State         string
	Decisions     []DecisionView
	Why           string
	PreMortem     []string
}

// DecisionView is one person's approval or rejection.
type DecisionView struct {
	Actor    string
	Decision string
	Comment  string
	At       time.Time
}

// Gate states (the workflow's).
const (
	GatePending  = "pending"
	GateWaiting  = "waiting"
	GateApproved = "approved"
	GateRejected = "rejected"
	GateTimedOut = "timed_out"
)

// Slack's limits on text that Trainyard renders (Block Kit reference).
const (
	maxHeader      = 150
	maxSectionText = 3000
	maxField       = 2000
	maxContext     = 2000
	maxButtonText  = 75
	maxConfirmText = 300
	maxTitle       = 100
	maxListItems   = 20
)

var phaseEmoji = map[string]string{
	"pending":           ":hourglass_flowing_sand:",
	"checking":          ":mag:",
	"awaiting_approval": ":raised_hand:",
	"paused":            ":double_vertical_bar:",
	"frozen":            ":snowflake:",
	"deploying":         ":rocket:",
	"stabilizing":       ":eyes:",
	"rolling_back":      ":rewind:",
	"succeeded":         ":white_check_mark:",
	"rolled_back":       ":leftwards_arrow_with_hook:",
	"rejected":          ":no_entry_sign:",
	"aborted":           ":octagonal_sign:",
	"failed":            ":x:",
}

var stateEmoji = map[string]string{
	"pending":         ":white_circle:",
	"running":         ":large_blue_circle:",
	"deployed":        ":white_check_mark:",
	"succeeded":       ":white_check_mark:",
	"failed":          ":x:",
	"rolling_back":    ":rewind:",
	"rolled_back":     ":leftwards_arrow_with_hook:",
	"rollback_failed": ":bangbang:",
	"cancelled":       ":heavy_minus_sign:",
	"skipped":         ":fast_forward:",
}

// PhaseEmoji is the emoji a phase is shown with.
func PhaseEmoji(phase string) string {
	if e, ok := phaseEmoji[phase]; ok {
		return e
	}
	return ":grey_question:"
}

func terminal(phase string) bool {
	switch phase {
	case "succeeded", "rolled_back", "rejected", "aborted", "failed":
		return true
	}
	return false
}

// human turns a state name into words: "awaiting_approval" → "awaiting approval".
func human(s string) string { return strings.ReplaceAll(s, "_", " ") }

// ReleaseBlocks renders a release's parent message: phase, stage, what ships, targets, risk,
// pending approvals, failure and links, with Abort and Rollback buttons (both confirmed) while
// the release can still take them.
func ReleaseBlocks(v ReleaseView) []goslack.Block {
	blocks := []goslack.Block{
		goslack.NewHeaderBlock(plain(truncate(fmt.Sprintf("%s Release %s %s", PhaseEmoji(v.Phase), v.Runbook, v.Version), maxHeader))),
	}

	fields := []*goslack.TextBlockObject{mrkdwn(truncate("*Phase*\n"+esc(human(v.Phase)), maxField))}
	if v.Stage != "" {
		stage := esc(v.Stage)
		if v.Environment != "" {
			stage += " (" + esc(v.Environment) + ")"
		}
		fields = append(fields, mrkdwn(truncate("*Stage*\n"+stage, maxField)))
	} else if v.Environment != "" {
		fields = append(fields, mrkdwn(truncate("*Environment*\n"+esc(v.Environment), maxField)))
	}
	if v.Requester != "" {
		fields = append(fields, mrkdwn(truncate("*Requested by*\n"+esc(v.Requester), maxField)))
	}
	if v.Risk != nil {
		fields = append(fields, mrkdwn(truncate("*Risk*\n"+riskLine(*v.Risk), maxField)))
	}
	blocks = append(blocks, goslack.NewSectionBlock(nil, fields, nil))

	if len(v.Components) > 0 {
		blocks = append(blocks, section("*Ships*\n"+componentLines(v.Components)))
	}
	if len(v.Targets) > 0 {
		blocks = append(blocks, section("*Targets*\n"+targetLines(v.Targets)))
	}
	if v.Risk != nil && len(v.Risk.Factors) > 0 {
		blocks = append(blocks, contextBlock("Risk factors: "+esc(strings.Join(v.Risk.Factors, "; "))))
	}
	var waiting []string
	for _, a := range v.Approvals {
		if a.State == GateWaiting {
			waiting = append(waiting, fmt.Sprintf("*%s* (%s)", esc(a.Gate), quorum(a)))
		}
	}
	if len(waiting) > 0 {
		blocks = append(blocks, section(":raised_hand: Waiting for approval: "+strings.Join(waiting, ", ")))
	}
	if v.PausedBy != "" {
		line := ":double_vertical_bar: Paused by *" + esc(v.PausedBy) + "*"
		if v.PauseReason != "" {
			line += ": " + esc(v.PauseReason)
		}
		blocks = append(blocks, section(line))
	}
	if v.Failure != "" {
		blocks = append(blocks, section(":x: *Failure:* "+esc(v.Failure)))
	}
	if l := links(v); l != "" {
		blocks = append(blocks, contextBlock(l))
	}
	if buttons := operatorButtons(v); len(buttons) > 0 {
		blocks = append(blocks, goslack.NewActionBlock("trainyard.operate", buttons...))
	}
	return blocks
}

// operatorButtons are Abort (until the release ends or rolls back) and Rollback (once it
// deploys), each behind a confirmation dialog.
func operatorButtons(v ReleaseView) []goslack.BlockElement {
	if terminal(v.Phase) || v.Phase == "rolling_back" || v.ID == "" {
		return nil
	}
	value, err := ActionValue(v.ID, "")
	if err != nil {
		return nil
	}
	name := truncate(v.Runbook+" "+v.Version, 120)
	buttons := []goslack.BlockElement{
		goslack.NewButtonBlockElement(ActionID(KindAbort), value, plain("Abort")).
			WithStyle(goslack.StyleDanger).
			WithConfirm(confirm("Abort this release?",
				fmt.Sprintf("Stop %s and roll back everything it deployed.", name), "Abort", true)),
	}
	if v.Phase == "deploying" || v.Phase == "stabilizing" {
		buttons = append(buttons, goslack.NewButtonBlockElement(ActionID(KindRollback), value, plain("Roll back")).
			WithStyle(goslack.StyleDanger).
			WithConfirm(confirm("Roll back this release?",
				fmt.Sprintf("Undo what %s deployed, in reverse order.", name), "Roll back", true)))
	}
	return buttons
}

// ApprovalBlocks renders the approval request for gate: who asked, what ships, the risk and why
// the gate exists, the gates already passed, who may approve and the quorum's progress, and
// Approve (confirmed) and Reject buttons while the gate waits. Once decided, the buttons give
// way to who decided and when.
func ApprovalBlocks(v ReleaseView, gate string) []goslack.Block {
	var g *ApprovalView
	for i := range v.Approvals {
		if v.Approvals[i].Gate == gate {
			g = &v.Approvals[i]
			break
		}
	}
	if g == nil {
		return []goslack.Block{section(fmt.Sprintf("Release `%s` has no approval gate *%s*.", esc(v.ID), esc(gate)))}
	}

	title := map[string]string{
		GateApproved: ":white_check_mark: Approved: ",
		GateRejected: ":no_entry_sign: Rejected: ",
		GateTimedOut: ":hourglass: Timed out: ",
	}[g.State]
	if title == "" {
		title = ":raised_hand: Approval needed: "
	}
	blocks := []goslack.Block{goslack.NewHeaderBlock(plain(truncate(title+g.Gate, maxHeader)))}

	ask := fmt.Sprintf("*%s* asks to ship *%s* `%s`", esc(or(v.Requester, "someone")), esc(v.Runbook), esc(v.Version))
	if g.Before != "" {
		ask += " into stage *" + esc(g.Before) + "*"
	}
	if v.Environment != "" {
		ask += " (" + esc(v.Environment) + ")"
	}
	blocks = append(blocks, section(ask+"."))
	if len(v.Components) > 0 {
		blocks = append(blocks, section("*What ships*\n"+componentLines(v.Components)))
	}

	var risk []string
	if v.Risk != nil {
		risk = append(risk, "*Risk:* "+riskLine(*v.Risk))
		for _, f := range limit(v.Risk.Factors) {
			risk = append(risk, "• "+esc(f))
		}
	}
	if g.Why != "" {
		risk = append(risk, "*Why this approval:* "+esc(g.Why))
	}
	if len(risk) > 0 {
		blocks = append(blocks, section(strings.Join(risk, "\n")))
	}
	if len(g.PreMortem) > 0 {
		lines := []string{"*What could go wrong*"}
		for _, p := range limit(g.PreMortem) {
			lines = append(lines, "• "+esc(p))
		}
		blocks = append(blocks, section(strings.Join(lines, "\n")))
	}
	var passed []string
	for _, rg := range v.Gates {
		switch rg.State {
		case "passed":
			passed = append(passed, esc(rg.Name))
		case "waived":
			passed = append(passed, esc(rg.Name)+" (waived)")
		}
	}
	for _, a := range v.Approvals {
		if a.Gate != g.Gate && a.State == GateApproved {
			passed = append(passed, esc(a.Gate))
		}
	}
	if len(passed) > 0 {
		blocks = append(blocks, contextBlock(":white_check_mark: Gates passed: "+strings.Join(limit(passed), ", ")))
	}

	who := "Anyone may approve"
	if len(g.Roles) > 0 {
		who = "Who may approve: " + esc(strings.Join(g.Roles, ", "))
	}
	if len(g.DistinctRoles) > 0 {
		who += " (" + esc(strings.Join(g.DistinctRoles, ", ")) + " each by a different person)"
	}
	blocks = append(blocks, section(fmt.Sprintf("%s. Approvals: %s.", who, quorum(*g))))

	if lines := decisionLines(g.Decisions); lines != "" {
		blocks = append(blocks, section(lines))
	}
	if g.State == GateWaiting {
		if buttons := approvalButtons(v, *g); len(buttons) > 0 {
			blocks = append(blocks, goslack.NewActionBlock("trainyard.decide", buttons...))
		} else {
			blocks = append(blocks, contextBlock("Approve or reject this release through the Trainyard API: its id is too long for Slack buttons."))
		}
	} else if g.State == GatePending {
		blocks = append(blocks, contextBlock("This approval opens when the release reaches it."))
	}
	if l := links(v); l != "" {
		blocks = append(blocks, contextBlock(l))
	}
	return blocks
}

func approvalButtons(v ReleaseView, g ApprovalView) []goslack.BlockElement {
	value, err := ActionValue(v.ID, g.Gate)
	if err != nil {
		return nil
	}
	return []goslack.BlockElement{
		goslack.NewButtonBlockElement(ActionID(KindApprove), value, plain("Approve")).
			WithStyle(goslack.StylePrimary).
			WithConfirm(confirm("Approve "+g.Gate+"?", approveConfirmText(v, g), "Approve", false)),
		goslack.NewButtonBlockElement(ActionID(KindReject), value, plain("Reject")).WithStyle(goslack.StyleDanger),
	}
}

// approveConfirmText is the Approve button's confirmation. When the release lists what could
// go wrong, confirming acknowledges it: the approver says they read it.
func approveConfirmText(v ReleaseView, g ApprovalView) string {
	text := fmt.Sprintf("You approve %s %s for %s. Your name goes into the audit log.", v.Runbook, v.Version, or(g.Before, "release"))
	if len(g.PreMortem) > 0 {
		text = fmt.Sprintf("You approve %s %s for %s and acknowledge the %d expected failure mode(s) listed under What could go wrong. Your name goes into the audit log.",
			v.Runbook, v.Version, or(g.Before, "release"), len(g.PreMortem))
	}
	return text
}

func decisionLines(ds []DecisionView) string {
	var lines []string
	for _, d := range ds {
		verb := map[string]string{"approve": "Approved", "approved": "Approved", "reject": "Rejected", "rejected": "Rejected"}[strings.ToLower(d.Decision)]
		if verb == "" {
			verb = esc(human(d.Decision))
		}
		emoji := ":white_check_mark:"
		if verb == "Rejected" {
			emoji = ":no_entry_sign:"
		}
		line := fmt.Sprintf("%s %s by *%s* at %s", emoji, verb, esc(d.Actor), d.At.UTC().Format("15:04 UTC"))
		if d.Comment != "" {
			line += ": " + esc(d.Comment)
		}
		lines = append(lines, line)
	}
	return strings.Join(lines, "\n")
}

// quorum is the gate's progress: "1 of 2".
func quorum(a ApprovalView) string {
	required := max(a.Required, 1)
	return fmt.Sprintf("%d of %d", a.Approved, required)
}

func riskLine(r RiskView) string {
	if r.Level == "" {
		return fmt.Sprintf("%d", r.Score)
	}
	return fmt.Sprintf("%d (%s)", r.Score, esc(r.Level))
}

func componentLines(cs []ComponentView) string {
	var lines []string
	for _, c := range limitComponents(cs) {
		lines = append(lines, fmt.Sprintf("• %s `%s`", esc(c.Name), esc(c.Version)))
	}
	if n := len(cs) - maxListItems; n > 0 {
		lines = append(lines, fmt.Sprintf("… and %d more", n))
	}
	return strings.Join(lines, "\n")
}

func limitComponents(cs []ComponentView) []ComponentView {
	if len(cs) > maxListItems {
		return cs[:maxListItems]
	}
	return cs
}

func limit(s []string) []string {
	if len(s) > maxListItems {
		return s[:maxListItems]
	}
	return s
}

// targetLines groups targets by stage, keeping the order stages first appear in.
func targetLines(ts []TargetView) string {
	var order []string
	byStage := map[string][]string{}
	for _, t := range ts {
		if _, ok := byStage[t.Stage]; !ok {
			order = append(order, t.Stage)
		}
		e, ok := stateEmoji[t.State]
		if !ok {
			e = ":grey_question:"
		}
		byStage[t.Stage] = append(byStage[t.Stage], fmt.Sprintf("%s %s %s", e, esc(t.Name), esc(human(t.State))))
	}
	var lines []string
	for _, s := range order {
		prefix := ""
		if s != "" {
			prefix = "*" + esc(s) + "*: "
		}
		lines = append(lines, prefix+strings.Join(byStage[s], " · "))
	}
	return strings.Join(lines, "\n")
}

func links(v ReleaseView) string {
	var l []string
	if u := safeURL(v.StatusURL); u != "" {
		l = append(l, "<"+u+"|Status>")
	}
	if u := safeURL(v.TemporalURL); u != "" {
		l = append(l, "<"+u+"|Temporal UI>")
	}
	if v.ID != "" {
		l = append(l, "`"+esc(v.ID)+"`")
	}
	return strings.Join(l, " · ")
}

// safeURL keeps http(s) URLs whose characters cannot break out of a Slack link.
func safeURL(u string) string {
	if !strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "http://") {
		return ""
	}
	if strings.ContainsAny(u, "<>| \n") {
		return ""
	}
	return u
}

// ThreadText is a stage event posted in the release's thread.
func ThreadText(event string) string {
	return truncate(esc(event), maxSectionText)
}

// EventBatch is one thread reply carrying Events timeline events.
type EventBatch struct {
	Text   string
	Events int
}

// EventBatches are the thread replies that carry events: one line per event ("`14:02:05`
// stage prod started", UTC), in as few replies as Slack's text limit allows, so a burst of
// events costs one call rather than one each. skipped counts earlier events left out; the
// first reply says so.
func EventBatches(events []EventView, skipped int) []EventBatch {
	var out []EventBatch
	var b strings.Builder
	n, count := 0, 0
	add := func(line string, isEvent bool) {
		line = truncate(line, maxSectionText)
		ln := utf8.RuneCountInString(line)
		if n > 0 && n+1+ln > maxSectionText {
			out = append(out, EventBatch{Text: b.String(), Events: count})
			b.Reset()
			n, count = 0, 0
		}
		if n > 0 {
			b.WriteByte('\n')
			n++
		}
		b.WriteString(line)
		n += ln
		if isEvent {
			count++
		}
	}
	if skipped > 0 {
		add(fmt.Sprintf("_… %d earlier event(s) are in the release status._", skipped), false)
	}
	for _, e := range events {
		msg := strings.Join(strings.Fields(e.Message), " ")
		add("`"+e.At.UTC().Format("15:04:05")+"` "+esc(msg), true)
	}
	if n > 0 {
		out = append(out, EventBatch{Text: b.String(), Events: count})
	}
	return out
}

// BroadcastText announces in the channel what everyone following the release must see: that
// it failed, is rolling back, was rolled back or aborted.
func BroadcastText(v ReleaseView) string {
	s := fmt.Sprintf("%s *Release %s %s %s*", PhaseEmoji(v.Phase), esc(v.Runbook), esc(v.Version), esc(human(v.Phase)))
	if v.Failure != "" {
		s += ": " + esc(v.Failure)
	}
	return truncate(s, maxSectionText)
}

// OperatorConfirmBlocks is the ephemeral answer to /release abort or rollback: what will
// happen, and a button that does it (with Slack's confirmation dialog too) next to Cancel.
func OperatorConfirmBlocks(kind ActionKind, releaseID, reason string) ([]goslack.Block, error) {
	value, err := OperatorValue(releaseID, reason)
	if err != nil {
		return nil, err
	}
	cancel, err := ActionValue(releaseID, "")
	if err != nil {
		return nil, err
	}
	what, label := "Abort", "Abort release"
	effect := "stops the release and rolls back everything it deployed"
	if kind == KindRollback {
		what, label = "Roll back", "Roll back release"
		effect = "undoes what the release deployed, last deployed first"
	}
	text := fmt.Sprintf("*%s `%s`?* This %s.", what, esc(truncate(releaseID, 300)), effect)
	if reason != "" {
		text += "\nReason: " + esc(reason)
	} else {
		text += "\nNo reason given; the audit log records who did it."
	}
	return []goslack.Block{
		section(text),
		goslack.NewActionBlock("trainyard.confirm",
			goslack.NewButtonBlockElement(ActionID(kind), value, plain(label)).
				WithStyle(goslack.StyleDanger).
				WithConfirm(confirm(what+" this release?", "This cannot be undone.", what, true)),
			goslack.NewButtonBlockElement(ActionID(KindCancel), cancel, plain("Cancel")),
		),
	}, nil
}

// FallbackText is the plain text sent with a release message: notifications and clients that
// cannot show blocks display it.
func FallbackText(v ReleaseView) string {
	s := fmt.Sprintf("Release %s %s: %s", v.Runbook, v.Version, human(v.Phase))
	if v.Stage != "" {
		s += ", stage " + v.Stage
	}
	if v.Failure != "" {
		s += ": " + v.Failure
	}
	return truncate(esc(s), maxSectionText)
}

// ApprovalFallbackText is the plain text sent with an approval request.
func ApprovalFallbackText(v ReleaseView, gate string) string {
	return truncate(esc(fmt.Sprintf("Approval needed (%s) for %s %s requested by %s", gate, v.Runbook, v.Version, or(v.Requester, "someone"))), maxSectionText)
}

func plain(s string) *goslack.TextBlockObject {
	return goslack.NewTextBlockObject(goslack.PlainTextType, s, true, false)
}

func mrkdwn(s string) *goslack.TextBlockObject {
	return goslack.NewTextBlockObject(goslack.MarkdownType, s, false, false)
}

func section(text string) *goslack.SectionBlock {
	return goslack.NewSectionBlock(mrkdwn(truncate(text, maxSectionText)), nil, nil)
}

func contextBlock(text string) *goslack.ContextBlock {
	return goslack.NewContextBlock("", mrkdwn(truncate(text, maxContext)))
}

func confirm(title, text, ok string, danger bool) *goslack.ConfirmationBlockObject {
	c := goslack.NewConfirmationBlockObject(plain(truncate(title, maxTitle)), plain(truncate(text, maxConfirmText)),
		plain(truncate(ok, maxButtonText)), plain("Cancel"))
	if danger {
		c = c.WithStyle(goslack.StyleDanger)
	} else {
		c = c.WithStyle(goslack.StylePrimary)
	}
	return c
}

// esc escapes the three characters Slack's mrkdwn reads as markup, so names and reasons show
// as typed and cannot mention @channel or forge links.
func esc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// truncate cuts s to n runes, marking the cut.
func truncate(s string, n int) string {
	if n <= 0 {
		return ""
	}
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
