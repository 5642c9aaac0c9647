package activities

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"time"

	goslack "github.com/slack-go/slack"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/trainyard/trainyard/integrations/slack"
	"github.com/trainyard/trainyard/risk"
)

// Slack is what the activities need to show releases in Slack.
type Slack struct {
	Client slack.Client
	// PublicURL is the API's public URL (no trailing slash), for each release's status link.
	PublicURL string
	// TemporalUIURL and Namespace build the link to a release in the Temporal UI.
	TemporalUIURL string
	Namespace     string
}

// ErrTypeSlackRefused is the failure type of a Slack call that retrying cannot fix (a channel
// that does not exist, a missing scope, a revoked token).
const ErrTypeSlackRefused = "SlackRefused"

// SlackRefs is where a release's Slack messages are. The workflow keeps it and hands it to each
// PublishRelease, which returns it updated, so a re-render edits the same messages and a
// restart loses nothing.
type SlackRefs struct {
	// Channel is the channel's id, as Slack answered the first post.
	Channel    string `json:"channel,omitempty"`
	ParentTS   string `json:"parentTs,omitempty"`
	ParentHash string `json:"parentHash,omitempty"`
	// Approvals are the approval requests posted, one per gate.
	Approvals []ApprovalMessage `json:"approvals,omitempty"`
	// Events counts the timeline events dealt with: posted in the thread, or left out.
	Events int `json:"events"`
	// Broadcast lists the phases already announced in the channel.
	Broadcast []string `json:"broadcast,omitempty"`
}

// ApprovalMessage is the approval request of one gate. Hash is that of its last rendering, so
// an unchanged message is not sent again.
type ApprovalMessage struct {
	Gate string `json:"gate"`
	TS   string `json:"ts"`
	Hash string `json:"hash,omitempty"`
}

// PublishRequest is what a release shows of itself in Slack: its state, the timeline events
// since the last publish, and where its messages are.
type PublishRequest struct {
	// Channel is the runbook's channel (#name or id).
	Channel string          `json:"channel"`
	Release ReleaseSnapshot `json:"release"`
	// Events are timeline events from index EventsFrom on; events between Refs.Events and
	// EventsFrom were left out (a long timeline is not replayed into the thread).
	Events     []TimelineEvent `json:"events,omitempty"`
	EventsFrom int             `json:"eventsFrom"`
	Refs       SlackRefs       `json:"refs"`
}

// PublishResult is the refs after a publish. Incomplete says something could not be sent and
// may be sent by publishing again at once.
type PublishResult struct {
	Refs       SlackRefs `json:"refs"`
	Incomplete bool      `json:"incomplete,omitempty"`
}

// ReleaseSnapshot is a release's state as Slack shows it.
type ReleaseSnapshot struct {
	ID          string             `json:"id"`
	Runbook     string             `json:"runbook"`
	Version     string             `json:"version"`
	Requester   string             `json:"requester"`
	Phase       string             `json:"phase"`
	Stage       string             `json:"stage,omitempty"`
	Environment string             `json:"environment,omitempty"`
	Failure     string             `json:"failure,omitempty"`
	PausedBy    string             `json:"pausedBy,omitempty"`
	PauseReason string             `json:"pauseReason,omitempty"`
	Components  []ComponentFact    `json:"components,omitempty"`
	Risk        *risk.Assessment   `json:"risk,omitempty"`
	Targets     []TargetSnapshot   `json:"targets,omitempty"`
	Approvals   []ApprovalSnapshot `json:"approvals,omitempty"`
	Gates       []GateSnapshot     `json:"gates,omitempty"`
	// PreMortem lists the expected failure modes and what is ready for each, which an
	// approver acknowledges.
	PreMortem []string `json:"preMortem,omitempty"`
}

// TargetSnapshot is one target's state.
type TargetSnapshot struct {
	Stage string `json:"stage"`
	Name  string `json:"name"`
	State string `json:"state"`
}

// ApprovalSnapshot is one approval gate and its decisions.
type ApprovalSnapshot struct {
	Gate          string             `json:"gate"`
	Before        string             `json:"before"`
	Roles         []string           `json:"roles,omitempty"`
	Required      int                `json:"required"`
	DistinctRoles []string           `json:"distinctRoles,omitempty"`
	State         string             `json:"state"`
	Why           string             `json:"why,omitempty"`
	Decisions     []DecisionSnapshot `json:"decisions,omitempty"`
}

// DecisionSnapshot is one person's decision on a gate ("approved" or "rejected").
type DecisionSnapshot struct {
	Actor    string    `json:"actor"`
	Decision string    `json:"decision"`
	Comment  string    `json:"comment,omitempty"`
	At       time.Time `json:"at"`
}

// GateSnapshot is one readiness gate's verdict.
type GateSnapshot struct {
	Name    string `json:"name"`
	State   string `json:"state"`
	Summary string `json:"summary,omitempty"`
}

// TimelineEvent is one line of the release's timeline.
type TimelineEvent struct {
	At      time.Time `json:"at"`
	Message string    `json:"message"`
}

// broadcastPhases are announced in the channel, not only in the thread.
var broadcastPhases = []string{"rolling_back", "rolled_back", "failed", "aborted"}

// PublishRelease renders the release into its runbook's channel: one parent message edited in
// place, the new timeline events in its thread, failures and rollbacks also shown in the
// channel, and one approval request per gate that waits or waited. It does nothing, and
// counts the events as dealt with, when Slack is not configured.
//
// A retried attempt must not post twice: an attempt fails only while it has posted nothing;
// once it has, it returns the refs so far, Incomplete when another try may send the rest.
func (a *Activities) PublishRelease(ctx context.Context, req PublishRequest) (PublishResult, error) {
	p := &publisher{req: req, refs: cloneRefs(req.Refs), log: a.logger().With("release", req.Release.ID)}
	if a.Slack == nil || a.Slack.Client == nil || req.Channel == "" {
		p.refs.Events = req.EventsFrom + len(req.Events)
		return PublishResult{Refs: p.refs}, nil
	}
	p.slack = a.Slack
	p.view = releaseView(req.Release, a.Slack)
	err := p.run(ctx)
	if err == nil {
		return PublishResult{Refs: p.refs}, nil
	}
	if !p.changed {
		return PublishResult{}, slackFailure(err)
	}
	p.log.Warn("release partly published to slack", "channel", req.Channel, "error", err)
	return PublishResult{Refs: p.refs, Incomplete: slack.IsRetryable(err)}, nil
}

type publisher struct {
	req   PublishRequest
	refs  SlackRefs
	view  slack.ReleaseView
	slack *Slack
	log   *slog.Logger
	// changed: a message was posted in this attempt, so failing it would post it again.
	changed bool
}

func (p *publisher) run(ctx context.Context) error {
	if err := p.parent(ctx); err != nil {
		return err
	}
	if err := p.events(ctx); err != nil {
		return err
	}
	if err := p.broadcast(ctx); err != nil {
		return err
	}
	return p.approvals(ctx)
}

func (p *publisher) channel() string {
	if p.refs.Channel != "" {
		return p.refs.Channel
	}
	return p.req.Channel
}

// post posts m and notes that this attempt changed something.
func (p *publisher) post(ctx context.Context, m slack.Message) (slack.Posted, error) {
	posted, err := p.slack.Client.PostMessage(ctx, m)
	if err != nil {
		return posted, err
	}
	p.changed = true
	if p.refs.Channel == "" {
		p.refs.Channel = posted.Channel
	}
	return posted, nil
}

func (p *publisher) parent(ctx context.Context) error {
	blocks, text := slack.ReleaseBlocks(p.view), slack.FallbackText(p.view)
	h := hashMessage(blocks, text)
	if p.refs.ParentTS != "" {
		if h == p.refs.ParentHash {
			return nil
		}
		err := p.slack.Client.UpdateMessage(ctx, p.refs.Channel, p.refs.ParentTS, blocks, text)
		if err == nil {
			p.refs.ParentHash = h
			return nil
		}
		if !isSlackError(err, "message_not_found") {
			return err
		}
		// Someone deleted the release's message: it is posted again, with a fresh thread.
		p.log.Info("release message was deleted in slack; posting it again", "ts", p.refs.ParentTS)
	}
	posted, err := p.post(ctx, slack.Message{Channel: p.channel(), Blocks: blocks, Text: text})
	if err != nil {
		return err
	}
	p.refs.ParentTS, p.refs.ParentHash = posted.TS, h
	return nil
}

func (p *publisher) events(ctx context.Context) error {
	skipped := max(p.req.EventsFrom-p.refs.Events, 0)
	views := make([]slack.EventView, len(p.req.Events))
	for i, e := range p.req.Events {
		views[i] = slack.EventView{At: e.At, Message: e.Message}
	}
	next := p.req.EventsFrom
	for _, b := range slack.EventBatches(views, skipped) {
		if _, err := p.post(ctx, slack.Message{Channel: p.channel(), ThreadTS: p.refs.ParentTS, Text: b.Text}); err != nil {
			return err
		}
		next += b.Events
		p.refs.Events = next
	}
	p.refs.Events = max(p.refs.Events, p.req.EventsFrom+len(p.req.Events))
	return nil
}

func (p *publisher) broadcast(ctx context.Context) error {
	phase := p.view.Phase
	if !slices.Contains(broadcastPhases, phase) || slices.Contains(p.refs.Broadcast, phase) {
		return nil
	}
	m := slack.Message{Channel: p.channel(), ThreadTS: p.refs.ParentTS, Broadcast: true, Text: slack.BroadcastText(p.view)}
	if _, err := p.post(ctx, m); err != nil {
		return err
	}
	p.refs.Broadcast = append(p.refs.Broadcast, phase)
	return nil
}

func (p *publisher) approvals(ctx context.Context) error {
	for _, g := range p.view.Approvals {
		blocks, text := slack.ApprovalBlocks(p.view, g.Gate), slack.ApprovalFallbackText(p.view, g.Gate)
		h := hashMessage(blocks, text)
		i := slices.IndexFunc(p.refs.Approvals, func(m ApprovalMessage) bool { return m.Gate == g.Gate })
		if i >= 0 {
			m := &p.refs.Approvals[i]
			if m.Hash == h {
				continue
			}
			err := p.slack.Client.UpdateMessage(ctx, p.refs.Channel, m.TS, blocks, text)
			if err == nil {
				m.Hash = h
				continue
			}
			if !isSlackError(err, "message_not_found") {
				return err
			}
			p.refs.Approvals = slices.Delete(p.refs.Approvals, i, i+1)
		}
		if g.State != slack.GateWaiting {
			continue
		}
		// A channel post, not a thread reply: an approval request is for everyone in the
		// channel, and its buttons must be where approvers look.
		posted, err := p.post(ctx, slack.Message{Channel: p.channel(), Blocks: blocks, Text: text})
		if err != nil {
			return err
		}
		p.refs.Approvals = append(p.refs.Approvals, ApprovalMessage{Gate: g.Gate, TS: posted.TS, Hash: h})
	}
	return nil
}

// releaseView turns a snapshot into what the Slack messages render.
func releaseView(r ReleaseSnapshot, s *Slack) slack.ReleaseView {
	v := slack.ReleaseView{
		ID: r.ID, Runbook: r.Runbook, Version: r.Version, Phase: r.Phase, Stage: r.Stage, Environment: r.Environment,
		Requester: r.Requester, Failure: r.Failure, PausedBy: r.PausedBy, PauseReason: r.PauseReason,
	}
	if s.PublicURL != "" {
		v.StatusURL = strings.TrimRight(s.PublicURL, "/") + "/api/v1/releases/" + url.PathEscape(r.ID)
	}
	if s.TemporalUIURL != "" {
		ns := s.Namespace
		if ns == "" {
			ns = "default"
		}
		v.TemporalURL = strings.TrimRight(s.TemporalUIURL, "/") + "/namespaces/" + url.PathEscape(ns) + "/workflows/" + url.PathEscape(r.ID)
	}
	for _, c := range r.Components {
		v.Components = append(v.Components, slack.ComponentView{Name: c.Name, Version: c.Version})
	}
	if r.Risk != nil {
		rv := &slack.RiskView{Score: r.Risk.Score, Level: r.Risk.Level}
		for _, f := range r.Risk.Factors {
			if f.Points > 0 {
				rv.Factors = append(rv.Factors, fmt.Sprintf("%s +%.1f: %s", f.Name, f.Points, f.Why))
			}
		}
		v.Risk = rv
	}
	for _, t := range r.Targets {
		v.Targets = append(v.Targets, slack.TargetView{Stage: t.Stage, Name: t.Name, State: t.State})
	}
	for _, g := range r.Gates {
		v.Gates = append(v.Gates, slack.GateView{Name: g.Name, State: g.State, Summary: g.Summary})
	}
	for _, ap := range r.Approvals {
		av := slack.ApprovalView{
			Gate: ap.Gate, Before: ap.Before, Roles: ap.Roles, Required: ap.Required, DistinctRoles: ap.DistinctRoles,
			State: ap.State, Why: ap.Why, PreMortem: r.PreMortem,
		}
		for _, d := range ap.Decisions {
			if d.Decision == slack.GateApproved {
				av.Approved++
			}
			av.Decisions = append(av.Decisions, slack.DecisionView{Actor: d.Actor, Decision: d.Decision, Comment: d.Comment, At: d.At})
		}
		v.Approvals = append(v.Approvals, av)
	}
	return v
}

func cloneRefs(r SlackRefs) SlackRefs {
	r.Approvals = slices.Clone(r.Approvals)
	r.Broadcast = slices.Clone(r.Broadcast)
	return r
}

// hashMessage identifies a rendering, so an unchanged message is not sent again.
func hashMessage(blocks []goslack.Block, text string) string {
	b, _ := json.Marshal(blocks) // blocks are plain structs: they always marshal
	h := sha256.New()
	h.Write(b)
	h.Write([]byte{0})
	h.Write([]byte(text))
	return hex.EncodeToString(h.Sum(nil))[:16]
}

func isSlackError(err error, code string) bool {
	var se goslack.SlackErrorResponse
	return errors.As(err, &se) && se.Err == code
}

// slackHints say what to do about Slack's refusals an operator can fix.
var slackHints = map[string]string{
	"channel_not_found": "check the runbook's channel, and for a private channel invite the Trainyard app",
	"not_in_channel":    "invite the Trainyard app to the channel, or give it the chat:write.public scope",
	"is_archived":       "the runbook's channel is archived; name another channel in the runbook",
	"missing_scope":     "add the scopes of deploy/slack-app-manifest.yaml to the app and reinstall it",
	"invalid_auth":      "check TRAINYARD_SLACK_BOT_TOKEN",
	"not_authed":        "set TRAINYARD_SLACK_BOT_TOKEN",
	"token_revoked":     "the app was uninstalled or its token revoked; reinstall it and update TRAINYARD_SLACK_BOT_TOKEN",
	"account_inactive":  "the app was uninstalled or its token revoked; reinstall it and update TRAINYARD_SLACK_BOT_TOKEN",
}

// slackFailure makes a Slack error what Temporal should do with it: retried while Slack may
// answer later, final when it refused.
func slackFailure(err error) error {
	if slack.IsRetryable(err) {
		return err
	}
	var se goslack.SlackErrorResponse
	if errors.As(err, &se) {
		if hint, ok := slackHints[se.Err]; ok {
			return temporal.NewNonRetryableApplicationError(err.Error()+": "+hint, ErrTypeSlackRefused, nil)
		}
	}
	return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeSlackRefused, nil)
}

// SlackNotifier delivers escalations to the release's channel, mentioning the Slack user groups
// of the roles escalated to.
type SlackNotifier struct {
	Client slack.Client
	// RoleGroups maps a role to the Slack user group (S…) that holds it.
	RoleGroups map[string]string
	Logger     *slog.Logger
}

var _ Notifier = (*SlackNotifier)(nil)

// notifyAttempts bounds how often an escalation is tried: the Notify activity retries without
// end, and the gate waits for it.
const notifyAttempts = 3

// Notify implements Notifier. A release whose runbook names no channel is not announced. A
// failure Slack refuses, or one that outlasts notifyAttempts, is logged and dropped: the
// escalation is in the audit trail and the timeline either way.
func (n *SlackNotifier) Notify(ctx context.Context, req NotifyRequest) error {
	if req.Channel == "" || n.Client == nil {
		return nil
	}
	var mentions []string
	for _, role := range req.Roles {
		if g, ok := n.RoleGroups[role]; ok && g != "" {
			mentions = append(mentions, "<!subteam^"+g+">")
		} else {
			mentions = append(mentions, "*"+slack.Escape(role)+"*")
		}
	}
	text := ":rotating_light: " + slack.Escape(req.Text)
	if len(mentions) > 0 {
		text = ":rotating_light: " + strings.Join(mentions, " ") + ": " + slack.Escape(req.Text)
	}
	_, err := n.Client.PostMessage(ctx, slack.Message{Channel: req.Channel, Text: text})
	if err == nil {
		return nil
	}
	attempt := int32(1)
	if activity.IsActivity(ctx) {
		attempt = activity.GetInfo(ctx).Attempt
	}
	if slack.IsRetryable(err) && attempt < notifyAttempts {
		return err
	}
	log := n.Logger
	if log == nil {
		log = slog.Default()
	}
	log.Error("escalation not delivered to slack", "release", req.ReleaseID, "channel", req.Channel, "error", slackFailure(err).Error())
	return nil
}
