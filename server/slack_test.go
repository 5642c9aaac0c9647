package server

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	goslack "github.com/slack-go/slack"
	"github.com/stretchr/testify/require"

	"github.com/trainyard/trainyard/config"
	"github.com/trainyard/trainyard/integrations/slack"
	"github.com/trainyard/trainyard/runbooks"
	"github.com/trainyard/trainyard/store"
	"github.com/trainyard/trainyard/workflows"
)

const (
	slackSecret = "e2e3f1c0ffee8888abcd99yyyzzz85a5"
	slackTeam   = "T0TEAM"
	// responseURL is where Slack takes answers to one interaction.
	responseURL = "https://hooks.slack.com/actions/T0TEAM/1/abc"
)

// slackHarness is the server with Slack on: a Slack fake behind it, and a directory where
// U0ALICE is alice (approver), U0CI is ci (deployer), U0BOB is bob (no role) and U0GHOST has
// no email.
type slackHarness struct {
	*harness
	slack *slack.Fake
}

func newSlackHarness(t *testing.T) *slackHarness {
	t.Helper()
	h := newHarness(t, nil)
	fake := slack.NewFake()
	fake.Emails["U0GHOST"] = ""
	dir := slack.NewDirectory(fake, slack.DirectoryConfig{
		Users: map[string]string{"U0ALICE": "alice", "U0CI": "ci", "U0BOB": "bob"},
		Roles: map[string][]string{"alice": {"approver"}, "ci": {"deployer"}},
	})
	srv := New(Deps{
		Engine: h.engine, Store: h.store,
		Auth:          config.NewAuthenticator(nil),
		Catalog:       runbooks.Catalog{Dir: h.dir},
		PublicURL:     "https://trainyard.example",
		TemporalUIURL: "http://temporal-ui.example",
		Logger:        slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Slack:         &Slack{SigningSecret: slackSecret, Client: fake, Directory: dir},
	})
	srv.now = func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }
	h.srv, h.handler = srv, srv.Handler()
	return &slackHarness{harness: h, slack: fake}
}

// post sends body to path signed as Slack signs it at ts.
func (h *slackHarness) post(t *testing.T, path, body string, ts time.Time, secret string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set(slack.HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	req.Header.Set(slack.HeaderSignature, slack.Sign(secret, ts, []byte(body)))
	rec := httptest.NewRecorder()
	h.handler.ServeHTTP(rec, req)
	// Answers that follow the acknowledgement are part of what the request did.
	h.srv.slack.followUps.Wait()
	return rec
}

func (h *slackHarness) now() time.Time { return h.srv.now() }

func commandBody(user, text string) string {
	return url.Values{
		"command": {"/release"}, "text": {text}, "user_id": {user}, "user_name": {"someone"}, "team_id": {slackTeam},
		"channel_id": {"C0OPS"}, "response_url": {"https://hooks.slack.com/commands/T0TEAM/2/def"}, "trigger_id": {"trig-" + user},
	}.Encode()
}

// commandReply is a command's answer as Slack reads it.
type commandReply struct {
	ResponseType string `json:"response_type"`
	Text         string `json:"text"`
	Blocks       []goslack.Block
}

// command runs /release text as user and returns the ephemeral answer.
func (h *slackHarness) command(t *testing.T, user, text string) commandReply {
	t.Helper()
	rec := h.post(t, "/slack/commands", commandBody(user, text), h.now(), slackSecret)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var resp struct {
		commandReply
		Blocks goslack.Blocks `json:"blocks"`
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &resp), rec.Body.String())
	require.Equal(t, goslack.ResponseTypeEphemeral, resp.ResponseType, "answers go to the person who typed the command")
	resp.commandReply.Blocks = resp.Blocks.BlockSet
	return resp.commandReply
}

// clickBody is a block_actions payload as Slack sends it for a click on a Trainyard button.
func clickBody(t *testing.T, user string, kind slack.ActionKind, value string, ephemeral bool) string {
	t.Helper()
	payload := map[string]any{
		"type":         "block_actions",
		"user":         map[string]any{"id": user, "username": "someone", "team_id": slackTeam},
		"team":         map[string]any{"id": slackTeam, "domain": "acme"},
		"trigger_id":   "trig.1",
		"response_url": responseURL,
		"container":    map[string]any{"type": "message", "message_ts": "1700000000.000002", "channel_id": "C0REL", "is_ephemeral": ephemeral},
		"channel":      map[string]any{"id": "C0REL"},
		"actions": []map[string]any{{
			"action_id": slack.ActionID(kind), "block_id": "trainyard.decide", "type": "button", "value": value,
			"action_ts": "1700000001.000001",
		}},
	}
	b, err := json.Marshal(payload)
	require.NoError(t, err)
	return url.Values{"payload": {string(b)}}.Encode()
}

// rejectSubmission is the reject modal's view_submission with reason typed in it.
func rejectSubmission(t *testing.T, user, release, gate, reason string) string {
	t.Helper()
	view := slack.RejectModal(release, gate, "C0REL", "1700000000.000002")
	payload := map[string]any{
		"type": "view_submission",
		"user": map[string]any{"id": user, "username": "someone", "team_id": slackTeam},
		"team": map[string]any{"id": slackTeam},
		"view": map[string]any{
			"id": "V0MODAL", "type": "modal", "callback_id": view.CallbackID, "private_metadata": view.PrivateMetadata,
			"state": map[string]any{"values": map[string]any{
				slack.RejectReasonBlockID: map[string]any{slack.RejectReasonActionID: map[string]any{"type": "plain_text_input", "value": reason}},
			}},
		},
	}
	b, err := json.Marshal(payload)
	require.NoError(t, err)
	return url.Values{"payload": {string(b)}}.Encode()
}

func approveValue(t *testing.T) string {
	t.Helper()
	v, err := slack.ActionValue("release-hello-1.2.3", "production")
	require.NoError(t, err)
	return v
}

func TestSlackEndpoints_RefuseWhatSlackDidNotSign(t *testing.T) {
	t.Parallel()
	h := newSlackHarness(t)
	now := h.now()
	body := commandBody("U0ALICE", "start hello 1.2.3")
	tests := []struct {
		name   string
		path   string
		body   string
		ts     time.Time
		secret string
		status int
		detail string
	}{
		{name: "forged signature", path: "/slack/commands", body: body, ts: now, secret: "not-the-secret", status: http.StatusUnauthorized, detail: "signing secret"},
		{name: "stale timestamp", path: "/slack/commands", body: body, ts: now.Add(-6 * time.Minute), secret: slackSecret, status: http.StatusUnauthorized, detail: "clock"},
		{name: "timestamp from the future", path: "/slack/interactions", body: body, ts: now.Add(6 * time.Minute), secret: slackSecret, status: http.StatusUnauthorized, detail: "clock"},
		{name: "payload smuggled in the query", path: "/slack/interactions?payload=" + url.QueryEscape(`{"type":"block_actions"}`), body: "payload=%7B%7D", ts: now, secret: slackSecret, status: http.StatusBadRequest, detail: "query string"},
		{name: "command text smuggled in the query", path: "/slack/commands?text=abort+release-hello-1.2.3", body: body, ts: now, secret: slackSecret, status: http.StatusBadRequest, detail: "query string"},
		{name: "body too large", path: "/slack/commands", body: "text=" + strings.Repeat("a", slack.DefaultMaxBody), ts: now, secret: slackSecret, status: http.StatusRequestEntityTooLarge, detail: "larger"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := h.post(t, tt.path, tt.body, tt.ts, tt.secret)
			p := requireProblem(t, rec, tt.status, strings.Split(tt.path, "?")[0])
			require.Contains(t, p.Detail, tt.detail)
			require.NotContains(t, rec.Body.String(), slackSecret)
		})
	}
	require.Zero(t, h.engine.startCalls(), "nothing unsigned starts anything")
	require.Empty(t, h.store.auditRows())
}

func TestSlackEndpoints_AreOffWithoutSlack(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	rec := h.do(t, call{method: http.MethodPost, path: "/slack/commands", body: "command=%2Frelease"})
	requireProblem(t, rec, http.StatusNotFound, "/slack/commands")
	require.Nil(t, h.srv.SlackHandler())
}

func TestSlackCommand_StartsAReleaseAsTheSlackUser(t *testing.T) {
	t.Parallel()
	h := newSlackHarness(t)
	resp := h.command(t, "U0CI", "start hello 1.2.3 api=1.2.4")
	require.Contains(t, resp.Text, "Started release `release-hello-1.2.3`")
	require.Contains(t, resp.Text, "<https://trainyard.example/api/v1/releases/release-hello-1.2.3|Status>")

	require.Equal(t, 1, h.engine.startCalls())
	in := h.engine.started[0]
	require.Equal(t, workflows.Principal{Name: "ci", Roles: []string{"deployer"}}, in.Requester)
	require.Equal(t, []workflows.Component{{Name: "api", Version: "1.2.4"}}, in.Components)
	require.Equal(t, "hello", in.Runbook.Name)

	audits := h.store.auditRows()
	require.Len(t, audits, 1)
	a := audits[0]
	require.Equal(t, actionStart, a.Action)
	require.Equal(t, store.OutcomeAllowed, a.Outcome)
	require.Equal(t, "ci", a.Actor)
	require.Equal(t, "U0CI", a.SlackUser)
	require.Equal(t, slackTeam, a.SlackTeam)
	require.Equal(t, "release-hello-1.2.3", a.ReleaseID)
	require.Len(t, h.store.ensure, 1, "the release row is written with the audit row")
}

func TestSlackCommand_BadInputStartsNothingAndSaysWhatToType(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, user, text string
		want             []string
		audited          bool
	}{
		{name: "missing version", user: "U0CI", text: "start hello", want: []string{"Say which runbook and which version", "`/release start &lt;runbook&gt; &lt;version&gt; [component=version ...]`"}},
		{name: "unknown verb", user: "U0CI", text: "deploy hello 1.2.3", want: []string{`"deploy" is not a /release command`, "`/release list`"}},
		{name: "bad component", user: "U0CI", text: "start hello 1.2.3 api", want: []string{`"api" is not component=version`}},
		{name: "unknown runbook", user: "U0CI", text: "start nope 1.2.3", want: []string{`no runbook is named "nope"`, "known runbooks: hello", "Nothing was started"}, audited: true},
		{name: "bad version", user: "U0CI", text: "start hello 1..2/3", want: []string{`version "1..2/3" is not usable`}, audited: true},
		{name: "no role", user: "U0BOB", text: "start hello 1.2.3", want: []string{"bob holds no Trainyard role", "slack.users"}, audited: true},
		{name: "unknown person", user: "U0GHOST", text: "start hello 1.2.3", want: []string{"does not know who you are", "U0GHOST"}, audited: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newSlackHarness(t)
			resp := h.command(t, tt.user, tt.text)
			for _, w := range tt.want {
				require.Contains(t, resp.Text, w)
			}
			require.Zero(t, h.engine.startCalls())
			audits := h.store.auditRows()
			if !tt.audited {
				require.Empty(t, audits)
				return
			}
			require.Len(t, audits, 1)
			require.Equal(t, store.OutcomeDenied, audits[0].Outcome)
			require.Equal(t, tt.user, audits[0].SlackUser)
			require.Equal(t, slackTeam, audits[0].SlackTeam)
		})
	}
}

func TestSlackCommand_AnswersAtOnceAndFollowsUpWhenTheReleaseIsSlow(t *testing.T) {
	t.Parallel()
	h := newSlackHarness(t)
	h.srv.slack.budget = 20 * time.Millisecond
	release := make(chan struct{})
	h.engine.StartFunc = func(ctx context.Context, _ workflows.ReleaseInput) (bool, error) {
		<-release
		return true, nil
	}
	req := httptest.NewRequest(http.MethodPost, "/slack/commands", strings.NewReader(commandBody("U0CI", "start hello 1.2.3")))
	req.Header.Set(slack.HeaderTimestamp, strconv.FormatInt(h.now().Unix(), 10))
	req.Header.Set(slack.HeaderSignature, slack.Sign(slackSecret, h.now(), []byte(commandBody("U0CI", "start hello 1.2.3"))))
	rec := httptest.NewRecorder()
	h.handler.ServeHTTP(rec, req)
	require.Equal(t, http.StatusOK, rec.Code)
	require.Contains(t, rec.Body.String(), "Working on it")
	require.Empty(t, h.slack.Responses(), "the outcome is not known yet")

	close(release)
	h.srv.slack.followUps.Wait()
	res := h.slack.Responses()
	require.Len(t, res, 1)
	require.Equal(t, "https://hooks.slack.com/commands/T0TEAM/2/def", res[0].URL)
	require.Contains(t, res[0].Text, "Started release `release-hello-1.2.3`")
	require.False(t, res[0].ReplaceOriginal)
}

func TestSlackCommand_StatusAndList(t *testing.T) {
	t.Parallel()
	h := newSlackHarness(t)
	h.engine.StatusFunc = func(_ context.Context, id string) (workflows.ReleaseStatus, error) {
		if id != "release-hello-1.2.3" {
			return workflows.ReleaseStatus{}, ErrReleaseNotFound
		}
		return workflows.ReleaseStatus{ID: id, Runbook: "hello", Version: "1.2.3", Phase: workflows.PhaseDeploying, CurrentStage: "prod",
			Requester: workflows.Principal{Name: "ci"}}, nil
	}
	h.store.ListReleasesFunc = func(_ context.Context, f store.ReleaseFilter) ([]store.ReleaseRecord, error) {
		require.Positive(t, f.Limit)
		return []store.ReleaseRecord{
			{ID: "release-hello-1.2.3", Runbook: "hello", Version: "1.2.3", Phase: "deploying", Requester: "ci"},
			{ID: "release-hello-1.2.2", Runbook: "hello", Version: "1.2.2", Phase: "succeeded", Requester: "ci"},
		}, nil
	}

	st := h.command(t, "U0BOB", "status release-hello-1.2.3")
	require.Equal(t, "Release hello 1.2.3: deploying, stage prod", st.Text)
	require.NotEmpty(t, st.Blocks)
	require.Contains(t, h.command(t, "U0BOB", "status release-nope").Text, "No release has id `release-nope`")

	active := h.command(t, "U0BOB", "status")
	require.Contains(t, active.Text, "`release-hello-1.2.3` deploying")
	require.NotContains(t, active.Text, "release-hello-1.2.2", "status without an id shows releases in progress")
	list := h.command(t, "U0BOB", "list")
	require.Contains(t, list.Text, "release-hello-1.2.2")
	require.Contains(t, h.command(t, "U0BOB", "help").Text, "/release start")
	require.Empty(t, h.store.auditRows(), "reading is not audited")
}

func TestSlackCommand_PauseAndResumeEachAreTheirOwnUpdate(t *testing.T) {
	t.Parallel()
	h := newSlackHarness(t)
	var mu sync.Mutex
	var ids []string
	h.engine.OperateFunc = func(_ context.Context, id, updateID, update string, req workflows.OperatorRequest) (workflows.OperatorResult, error) {
		mu.Lock()
		ids = append(ids, updateID)
		mu.Unlock()
		require.Equal(t, "alice", req.Actor.Name)
		if update == workflows.UpdateResume {
			return workflows.OperatorResult{}, &RefusedError{Type: "*errors.errorString", Message: "unknown update resume. KnownUpdates=[approve reject abort]"}
		}
		require.Equal(t, "waiting for payments", req.Reason)
		return workflows.OperatorResult{Phase: workflows.PhaseDeploying, Paused: true}, nil
	}
	require.Contains(t, h.command(t, "U0ALICE", "pause release-hello-1.2.3").Text, "Say why you pause it")
	require.Contains(t, h.command(t, "U0ALICE", "pause release-hello-1.2.3 waiting for payments").Text, "Paused release `release-hello-1.2.3`")
	resume := h.command(t, "U0ALICE", "resume release-hello-1.2.3")
	require.Contains(t, resume.Text, "does not take that request")

	require.Equal(t, []string{"pause/alice/trig-U0ALICE", "resume/alice/trig-U0ALICE"}, ids)
	audits := h.store.auditRows()
	require.Len(t, audits, 3)
	require.Equal(t, []string{store.OutcomeDenied, store.OutcomeAllowed, store.OutcomeDenied}, []string{audits[0].Outcome, audits[1].Outcome, audits[2].Outcome})
	for _, a := range audits {
		require.Equal(t, "U0ALICE", a.SlackUser)
	}
}

func TestSlackCommand_AbortAsksForConfirmationFirst(t *testing.T) {
	t.Parallel()
	h := newSlackHarness(t)
	aborted := 0
	h.engine.AbortFunc = func(_ context.Context, id, updateID string, req workflows.AbortRequest) (workflows.AbortResult, error) {
		aborted++
		require.Equal(t, "abort/alice", updateID)
		require.Equal(t, "error rate climbing", req.Reason)
		return workflows.AbortResult{Phase: workflows.PhaseDeploying}, nil
	}
	resp := h.command(t, "U0ALICE", "abort release-hello-1.2.3 error rate climbing")
	require.Zero(t, aborted, "the command alone aborts nothing")
	var confirm *goslack.ButtonBlockElement
	for _, b := range resp.Blocks {
		if ab, ok := b.(*goslack.ActionBlock); ok {
			confirm = ab.Elements.ElementSet[0].(*goslack.ButtonBlockElement)
		}
	}
	require.NotNil(t, confirm)
	require.Equal(t, slack.ActionID(slack.KindAbort), confirm.ActionID)

	rec := h.post(t, "/slack/interactions", clickBody(t, "U0ALICE", slack.KindAbort, confirm.Value, true), h.now(), slackSecret)
	require.Equal(t, http.StatusOK, rec.Code)
	require.Equal(t, 1, aborted)
	res := h.slack.Responses()
	require.Len(t, res, 1)
	require.True(t, res[0].ReplaceOriginal, "the confirmation gives way to the outcome")
	require.Contains(t, res[0].Text, "alice aborted release `release-hello-1.2.3`")
	audits := h.store.auditRows()
	require.Len(t, audits, 1)
	require.Equal(t, actionAbort, audits[0].Action)
	require.Equal(t, "U0ALICE", audits[0].SlackUser)

	h.engine.StatusFunc = func(context.Context, string) (workflows.ReleaseStatus, error) {
		return workflows.ReleaseStatus{}, ErrReleaseNotFound
	}
	require.Contains(t, h.command(t, "U0ALICE", "rollback release-nope").Text, "No release has id `release-nope`")
}

func TestSlackInteraction_ApproveSendsTheUpdateOnceAndAudits(t *testing.T) {
	t.Parallel()
	h := newSlackHarness(t)
	var mu sync.Mutex
	var ids []string
	h.engine.ApproveFunc = func(_ context.Context, id, updateID string, req workflows.ApprovalRequest) (workflows.ApprovalResult, error) {
		mu.Lock()
		ids = append(ids, updateID)
		mu.Unlock()
		require.Equal(t, "release-hello-1.2.3", id)
		// Approve's confirmation dialog is the acknowledgement of the expected failure modes.
		require.Equal(t, workflows.ApprovalRequest{Gate: "production", Actor: workflows.Principal{Name: "alice", Roles: []string{"approver"}}, AcknowledgePreMortem: true}, req)
		return workflows.ApprovalResult{Gate: "production", State: workflows.GateWaiting, Approvals: 1, Required: 2}, nil
	}
	for range 2 { // a double click
		rec := h.post(t, "/slack/interactions", clickBody(t, "U0ALICE", slack.KindApprove, approveValue(t), false), h.now(), slackSecret)
		require.Equal(t, http.StatusOK, rec.Code)
		require.Empty(t, rec.Body.String())
	}
	require.Equal(t, []string{"approve/production/alice", "approve/production/alice"}, ids, "the same Update ID: the release applies it once")
	res := h.slack.Responses()
	require.Len(t, res, 2)
	require.Equal(t, responseURL, res[0].URL)
	require.False(t, res[0].ReplaceOriginal, "the approval request stays for the others")
	require.Contains(t, res[0].Text, "You approved *production* of `release-hello-1.2.3` (1 of 2)")

	a := h.store.auditRows()[0]
	require.Equal(t, actionApprove, a.Action)
	require.Equal(t, store.OutcomeAllowed, a.Outcome)
	require.Equal(t, "alice", a.Actor)
	require.Equal(t, []string{"approver"}, a.Roles)
	require.Equal(t, "U0ALICE", a.SlackUser)
	require.Equal(t, slackTeam, a.SlackTeam)
	var details map[string]any
	require.NoError(t, json.Unmarshal(a.Details, &details))
	require.Equal(t, "approve/production/alice", details["updateId"])
}

func TestSlackInteraction_ApproveWithoutTheRoleIsRefusedEphemerallyAndAudited(t *testing.T) {
	t.Parallel()
	h := newSlackHarness(t)
	h.engine.ApproveFunc = func(context.Context, string, string, workflows.ApprovalRequest) (workflows.ApprovalResult, error) {
		return workflows.ApprovalResult{}, &RefusedError{Type: workflows.ErrTypeForbidden, Message: "bob cannot decide production: it needs one of the roles approver"}
	}
	h.engine.StatusFunc = func(_ context.Context, id string) (workflows.ReleaseStatus, error) {
		return workflows.ReleaseStatus{ID: id, Approvals: []workflows.ApprovalStatus{{Gate: "production", Roles: []string{"approver", "sre"}, State: workflows.GateWaiting}}}, nil
	}
	rec := h.post(t, "/slack/interactions", clickBody(t, "U0BOB", slack.KindApprove, approveValue(t), false), h.now(), slackSecret)
	require.Equal(t, http.StatusOK, rec.Code)

	res := h.slack.Responses()
	require.Len(t, res, 1)
	require.False(t, res[0].ReplaceOriginal)
	require.Equal(t, "You can't approve *production* of `release-hello-1.2.3`: these roles can: approver, sre. Your roles: none.",
		strings.TrimPrefix(res[0].Text, ":no_entry_sign: "))
	audits := h.store.auditRows()
	require.Len(t, audits, 1)
	require.Equal(t, actionApprove, audits[0].Action)
	require.Equal(t, store.OutcomeDenied, audits[0].Outcome)
	require.Equal(t, "bob", audits[0].Actor)
	require.Equal(t, "U0BOB", audits[0].SlackUser)
	require.Equal(t, slackTeam, audits[0].SlackTeam)
}

func TestSlackInteraction_RejectOpensTheModalAndTheModalRejects(t *testing.T) {
	t.Parallel()
	h := newSlackHarness(t)
	var comments []string
	h.engine.RejectFunc = func(_ context.Context, _, updateID string, req workflows.ApprovalRequest) (workflows.ApprovalResult, error) {
		require.Equal(t, "reject/production/alice", updateID)
		comments = append(comments, req.Comment)
		if req.Comment == "too late" {
			return workflows.ApprovalResult{}, &RefusedError{Type: workflows.ErrTypeConflict, Message: "approval production is not awaiting a decision (it is approved)"}
		}
		return workflows.ApprovalResult{Gate: "production", State: workflows.GateRejected, Required: 1}, nil
	}

	rec := h.post(t, "/slack/interactions", clickBody(t, "U0ALICE", slack.KindReject, approveValue(t), false), h.now(), slackSecret)
	require.Equal(t, http.StatusOK, rec.Code)
	require.Empty(t, comments, "the button only asks for the reason")
	views := h.slack.Views()
	require.Len(t, views, 1)
	require.Equal(t, "trig.1", views[0].TriggerID)
	require.Equal(t, slack.RejectCallbackID, views[0].View.CallbackID)
	require.Contains(t, views[0].View.PrivateMetadata, `"release":"release-hello-1.2.3"`)

	// An empty reason is refused inside the modal.
	rec = h.post(t, "/slack/interactions", rejectSubmission(t, "U0ALICE", "release-hello-1.2.3", "production", "  "), h.now(), slackSecret)
	require.Equal(t, http.StatusOK, rec.Code)
	require.JSONEq(t, `{"response_action":"errors","errors":{"reason":"Say why you reject this release; the reason goes to the requester and the audit log."}}`, rec.Body.String())
	require.Empty(t, comments)

	rec = h.post(t, "/slack/interactions", rejectSubmission(t, "U0ALICE", "release-hello-1.2.3", "production", "error budget is gone"), h.now(), slackSecret)
	require.Equal(t, http.StatusOK, rec.Code)
	require.Empty(t, rec.Body.String(), "an empty answer closes the modal")
	require.Equal(t, []string{"error budget is gone"}, comments)
	eph := h.slack.Ephemerals()
	require.Len(t, eph, 1)
	require.Equal(t, slack.FakeEphemeral{Channel: "C0REL", User: "U0ALICE", Text: ":no_entry_sign: You rejected *production* of `release-hello-1.2.3`. The release ends rejected."}, eph[0])

	// A refusal stays in the modal, where the person is.
	rec = h.post(t, "/slack/interactions", rejectSubmission(t, "U0ALICE", "release-hello-1.2.3", "production", "too late"), h.now(), slackSecret)
	require.Equal(t, http.StatusOK, rec.Code)
	var got goslack.ViewSubmissionResponse
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
	require.Equal(t, goslack.RAErrors, got.ResponseAction)
	require.Contains(t, got.Errors[slack.RejectReasonBlockID], "not awaiting a decision")

	audits := h.store.auditRows()
	require.Len(t, audits, 2)
	require.Equal(t, actionReject, audits[0].Action)
	require.Equal(t, store.OutcomeAllowed, audits[0].Outcome)
	require.Contains(t, string(audits[0].Details), "error budget is gone")
	require.Equal(t, store.OutcomeDenied, audits[1].Outcome)
	require.Equal(t, "U0ALICE", audits[1].SlackUser)
}

func TestSlackInteraction_RollbackCancelUnknownUsersAndOtherApps(t *testing.T) {
	t.Parallel()
	h := newSlackHarness(t)
	var updates []string
	h.engine.OperateFunc = func(_ context.Context, _, updateID, update string, req workflows.OperatorRequest) (workflows.OperatorResult, error) {
		updates = append(updates, update+" "+updateID+" "+req.Reason)
		return workflows.OperatorResult{Phase: workflows.PhaseRollingBack}, nil
	}
	value, err := slack.ActionValue("release-hello-1.2.3", "")
	require.NoError(t, err)

	// From the release message: Slack's dialog confirmed; the message itself must stay.
	h.post(t, "/slack/interactions", clickBody(t, "U0ALICE", slack.KindRollback, value, false), h.now(), slackSecret)
	require.Equal(t, []string{"rollback rollback/alice no reason given (from Slack)"}, updates)
	res := h.slack.Responses()
	require.Len(t, res, 1)
	require.False(t, res[0].ReplaceOriginal, "the release's message is never replaced by an answer")
	require.Contains(t, res[0].Text, "alice ordered a rollback")

	h.post(t, "/slack/interactions", clickBody(t, "U0ALICE", slack.KindCancel, value, true), h.now(), slackSecret)
	res = h.slack.Responses()
	require.Len(t, res, 2)
	require.True(t, res[1].ReplaceOriginal)
	require.Contains(t, res[1].Text, "Cancelled")

	h.post(t, "/slack/interactions", clickBody(t, "U0GHOST", slack.KindApprove, approveValue(t), false), h.now(), slackSecret)
	res = h.slack.Responses()
	require.Len(t, res, 3)
	require.Contains(t, res[2].Text, "does not know who you are")
	audits := h.store.auditRows()
	last := audits[len(audits)-1]
	require.Equal(t, store.OutcomeDenied, last.Outcome)
	require.Equal(t, "slack:U0GHOST", last.Actor)
	require.Equal(t, "U0GHOST", last.SlackUser)

	other := url.Values{"payload": {`{"type":"block_actions","user":{"id":"U0ALICE"},"team":{"id":"T0TEAM"},"actions":[{"action_id":"someone-else.thing","block_id":"b1","type":"button","value":"x"}]}`}}.Encode()
	rec := h.post(t, "/slack/interactions", other, h.now(), slackSecret)
	require.Equal(t, http.StatusOK, rec.Code)
	require.Len(t, h.slack.Responses(), 3, "another app's buttons are not Trainyard's business")
}

func TestSlackHandler_SocketModeSharesTheHandler(t *testing.T) {
	t.Parallel()
	h := newSlackHarness(t)
	handler := h.srv.SlackHandler()
	require.NotNil(t, handler)
	resp, err := handler.HandleCommand(context.Background(), goslack.SlashCommand{Command: "/release", Text: "start hello 1.2.3", UserID: "U0CI", TeamID: slackTeam})
	require.NoError(t, err)
	require.Contains(t, resp.(slack.CommandResponse).Text, "Started release")
	require.Equal(t, 1, h.engine.startCalls())
	require.Equal(t, "U0CI", h.store.auditRows()[0].SlackUser)
}

func TestSlackRoutes_SocketModeOnlyServesNoRequestURLs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "hello.yaml"), []byte(helloRunbook), 0o600))
	srv := New(Deps{Engine: &fakeEngine{}, Store: &fakeStore{}, Catalog: runbooks.Catalog{Dir: dir},
		Slack: &Slack{Client: slack.NewFake(), Directory: slack.NewDirectory(slack.NewFake(), slack.DirectoryConfig{})}})
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/slack/commands", strings.NewReader("")))
	require.Equal(t, http.StatusNotFound, rec.Code)
	require.NotNil(t, srv.SlackHandler())
}

func TestSlackEndpoint_CommandFailureIsAnsweredWithoutDetails(t *testing.T) {
	t.Parallel()
	h := newSlackHarness(t)
	h.slack.Err = func(method string) error {
		if method == "users.info" {
			return errors.New("dial tcp: connection refused")
		}
		return nil
	}
	h.slack.Emails["U0NEW"] = "new@example.com"
	resp := h.command(t, "U0NEW", "list")
	require.Contains(t, resp.Text, "could not look you up in Slack")
	require.NotContains(t, resp.Text, "connection refused")
}
