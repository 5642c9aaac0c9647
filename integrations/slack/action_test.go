package slack

import (
	"encoding/json"
	"strings"
	"testing"

	goslack "github.com/slack-go/slack"
	"github.com/stretchr/testify/require"
)

// blockActionsPayload is a block_actions payload shaped as Slack documents it, for a click on
// the button with actionID and value in the message at C0CA5/1548261231.000200.
func blockActionsPayload(t *testing.T, actionID, value string) goslack.InteractionCallback {
	t.Helper()
	v, err := json.Marshal(value)
	require.NoError(t, err)
	raw := `{
		"type": "block_actions",
		"user": {"id": "U0CA5", "username": "amy", "name": "amy", "team_id": "T0CAG"},
		"api_app_id": "A0CA5",
		"token": "verification-token",
		"container": {"type": "message", "message_ts": "1548261231.000200", "channel_id": "C0CA5", "is_ephemeral": false},
		"trigger_id": "12345.98765.abcd2358fdea",
		"team": {"id": "T0CAG", "domain": "acme"},
		"channel": {"id": "C0CA5", "name": "release-shop"},
		"message": {"type": "message", "ts": "1548261231.000200", "text": "Approval needed"},
		"response_url": "https://hooks.slack.com/actions/T0CAG/1232321423432/D09sSasdasdAS9091209",
		"state": {"values": {}},
		"actions": [
			{"action_id": "another-app.thing", "block_id": "other", "type": "button", "value": "x", "action_ts": "1548426417.840180"},
			{"action_id": "` + actionID + `", "block_id": "trainyard.decide", "type": "button",
			 "text": {"type": "plain_text", "text": "Approve", "emoji": true}, "value": ` + string(v) + `, "action_ts": "1548426417.840180"}
		]
	}`
	var cb goslack.InteractionCallback
	require.NoError(t, json.Unmarshal([]byte(raw), &cb))
	return cb
}

// rejectSubmission is the view_submission Slack sends when the reject modal is submitted with
// reason.
func rejectSubmission(t *testing.T, view goslack.ModalViewRequest, reason string) goslack.InteractionCallback {
	t.Helper()
	md, err := json.Marshal(view.PrivateMetadata)
	require.NoError(t, err)
	r, err := json.Marshal(reason)
	require.NoError(t, err)
	raw := `{
		"type": "view_submission",
		"team": {"id": "T0CAG", "domain": "acme"},
		"user": {"id": "U0CA5", "username": "amy", "name": "amy", "team_id": "T0CAG"},
		"api_app_id": "A0CA5",
		"token": "verification-token",
		"trigger_id": "12345.98765.abcd2358fdea",
		"view": {
			"id": "VNHU13V36", "team_id": "T0CAG", "type": "modal",
			"callback_id": "` + view.CallbackID + `",
			"private_metadata": ` + string(md) + `,
			"state": {"values": {"` + RejectReasonBlockID + `": {"` + RejectReasonActionID + `": {"type": "plain_text_input", "value": ` + string(r) + `}}}},
			"hash": "156663117.cd33ad1f"
		},
		"response_urls": []
	}`
	var cb goslack.InteractionCallback
	require.NoError(t, json.Unmarshal([]byte(raw), &cb))
	return cb
}

func TestActionValue_RoundTripsAnyReleaseAndGate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ release, gate string }{
		{"release-shop-1.2.3", "prod-signoff"},
		{"release-shop-1.2.3", ""},
		{"ci|key with spaces&=%", "gate|with|pipes"},
		{"release-café-1.0", "sécurité"},
	} {
		v, err := ActionValue(tc.release, tc.gate)
		require.NoError(t, err)
		require.LessOrEqual(t, len(v), MaxValueLen)
		id, gate, reason, err := parseActionValue(v)
		require.NoError(t, err)
		require.Equal(t, tc.release, id)
		require.Equal(t, tc.gate, gate)
		require.Empty(t, reason)
	}
}

func TestOperatorValue_CarriesTheReasonTypedWithTheCommand(t *testing.T) {
	t.Parallel()
	for _, reason := range []string{"", "error rate | climbing & 5% <now>", strings.Repeat("é", 300)} {
		v, err := OperatorValue("release-shop-1.2.3", reason)
		require.NoError(t, err)
		got, err := ParseInteraction(blockActionsPayload(t, ActionID(KindAbort), v))
		require.NoError(t, err)
		require.Equal(t, KindAbort, got.Kind)
		require.Equal(t, "release-shop-1.2.3", got.ReleaseID)
		require.Empty(t, got.Gate)
		require.Equal(t, strings.TrimSpace(reason), got.Reason)
	}
	_, err := OperatorValue("release-shop-1.2.3", strings.Repeat("é", 400))
	require.ErrorContains(t, err, "shorten it")
}

func TestActionValue_RefusesWhatSlackWouldRefuse(t *testing.T) {
	t.Parallel()
	_, err := ActionValue(strings.Repeat("r", 200), strings.Repeat("g", 60))
	require.ErrorContains(t, err, "too long for a slack button")
}

func TestParseInteraction_ReadsTrainyardButtons(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		kind ActionKind
		gate string
	}{
		{KindApprove, "prod-signoff"},
		{KindReject, "prod-signoff"},
		{KindAbort, ""},
		{KindRollback, ""},
	} {
		t.Run(string(tc.kind), func(t *testing.T) {
			t.Parallel()
			value, err := ActionValue("release-shop-1.2.3", tc.gate)
			require.NoError(t, err)
			got, err := ParseInteraction(blockActionsPayload(t, ActionID(tc.kind), value))
			require.NoError(t, err)
			require.Equal(t, Action{
				Kind:        tc.kind,
				ReleaseID:   "release-shop-1.2.3",
				Gate:        tc.gate,
				UserID:      "U0CA5",
				TeamID:      "T0CAG",
				UserName:    "amy",
				ResponseURL: "https://hooks.slack.com/actions/T0CAG/1232321423432/D09sSasdasdAS9091209",
				TriggerID:   "12345.98765.abcd2358fdea",
				ChannelID:   "C0CA5",
				MessageTS:   "1548261231.000200",
			}, got)
		})
	}
}

func TestParseInteraction_ReadsTheButtonsApprovalBlocksRenders(t *testing.T) {
	t.Parallel()
	v := sampleRelease()
	for _, b := range buttons(ApprovalBlocks(v, "prod-signoff")) {
		got, err := ParseInteraction(blockActionsPayload(t, b.ActionID, b.Value))
		require.NoError(t, err)
		require.Equal(t, v.ID, got.ReleaseID)
		require.Equal(t, "prod-signoff", got.Gate)
	}
}

func TestParseInteraction_RefusesMalformedTrainyardActions(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, actionID, value string }{
		{"unknown kind", "trainyard.deploy", "release-shop-1.2.3|"},
		{"value without separator", ActionID(KindApprove), "release-shop-1.2.3"},
		{"value without release", ActionID(KindAbort), "|gate"},
		{"value with a bad escape", ActionID(KindApprove), "release%zz|gate"},
		{"approve without gate", ActionID(KindApprove), "release-shop-1.2.3|"},
		{"reject without gate", ActionID(KindReject), "release-shop-1.2.3|"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseInteraction(blockActionsPayload(t, tc.actionID, tc.value))
			require.ErrorIs(t, err, ErrMalformed)
		})
	}
}

func TestParseInteraction_IgnoresWhatIsNotTrainyards(t *testing.T) {
	t.Parallel()
	other := blockActionsPayload(t, "another-app.approve", "x")
	closed := goslack.InteractionCallback{Type: goslack.InteractionTypeViewClosed}
	otherModal := rejectSubmission(t, goslack.ModalViewRequest{CallbackID: "another-app.modal"}, "because")
	shortcut := goslack.InteractionCallback{Type: goslack.InteractionTypeShortcut}
	for name, cb := range map[string]goslack.InteractionCallback{
		"another app's button": other, "modal closed": closed, "another modal": otherModal, "shortcut": shortcut,
	} {
		_, err := ParseInteraction(cb)
		require.ErrorIs(t, err, ErrNotTrainyard, name)
	}
}

func TestParseInteraction_ReadsTheRejectModal(t *testing.T) {
	t.Parallel()
	view := RejectModal("release-shop-1.2.3", "prod-signoff", "C0CA5", "1548261231.000200")
	got, err := ParseInteraction(rejectSubmission(t, view, "  the canary's error budget is gone \n"))
	require.NoError(t, err)
	require.Equal(t, Action{
		Kind:      KindReject,
		ReleaseID: "release-shop-1.2.3",
		Gate:      "prod-signoff",
		UserID:    "U0CA5",
		TeamID:    "T0CAG",
		UserName:  "amy",
		TriggerID: "12345.98765.abcd2358fdea",
		ChannelID: "C0CA5",
		MessageTS: "1548261231.000200",
		Reason:    "the canary's error budget is gone",
	}, got)
}

func TestParseInteraction_RefusesAnEmptyReasonInTheModal(t *testing.T) {
	t.Parallel()
	view := RejectModal("release-shop-1.2.3", "prod-signoff", "C0CA5", "1548261231.000200")
	for _, reason := range []string{"", "   \n\t"} {
		_, err := ParseInteraction(rejectSubmission(t, view, reason))
		var ie *InvalidSubmissionError
		require.ErrorAs(t, err, &ie)
		require.Contains(t, ie.Errors, RejectReasonBlockID)

		body, err := json.Marshal(ViewErrors(ie.Errors))
		require.NoError(t, err)
		require.JSONEq(t, `{"response_action":"errors","errors":{"reason":"`+ie.Errors[RejectReasonBlockID]+`"}}`, string(body))
	}
}

func TestParseInteraction_RefusesAReasonLongerThanTheModalAllows(t *testing.T) {
	t.Parallel()
	view := RejectModal("release-shop-1.2.3", "prod-signoff", "C0CA5", "1")
	_, err := ParseInteraction(rejectSubmission(t, view, strings.Repeat("é", maxReason+1)))
	var ie *InvalidSubmissionError
	require.ErrorAs(t, err, &ie)
	require.Contains(t, ie.Errors[RejectReasonBlockID], "under 2000 characters")
}

func TestParseInteraction_RefusesARejectModalWithoutItsMetadata(t *testing.T) {
	t.Parallel()
	for _, md := range []string{"", "not json", `{"release":"release-shop-1.2.3"}`} {
		view := RejectModal("r", "g", "c", "ts")
		view.PrivateMetadata = md
		_, err := ParseInteraction(rejectSubmission(t, view, "reason"))
		require.ErrorIs(t, err, ErrMalformed, md)
	}
}

func TestRejectModal_AsksForARequiredReason(t *testing.T) {
	t.Parallel()
	view := RejectModal("release-shop-1.2.3", "prod-signoff", "C0CA5", "1548261231.000200")
	require.Equal(t, goslack.VTModal, view.Type)
	require.Equal(t, RejectCallbackID, view.CallbackID)
	require.LessOrEqual(t, len(view.PrivateMetadata), 3000, "Slack's private_metadata limit")
	require.True(t, goslack.ValidateUniqueBlockID(view))

	var input *goslack.InputBlock
	for _, b := range view.Blocks.BlockSet {
		if ib, ok := b.(*goslack.InputBlock); ok {
			input = ib
		}
	}
	require.NotNil(t, input)
	require.Equal(t, RejectReasonBlockID, input.BlockID)
	require.False(t, input.Optional, "Slack itself refuses an empty required input")
	el, ok := input.Element.(*goslack.PlainTextInputBlockElement)
	require.True(t, ok)
	require.Equal(t, RejectReasonActionID, el.ActionID)
	require.Equal(t, maxReason, el.MaxLength)

	// The view serialises as views.open expects it.
	raw, err := json.Marshal(view)
	require.NoError(t, err)
	require.Contains(t, string(raw), `"type":"modal"`)
	require.Contains(t, string(raw), `"callback_id":"trainyard.reject_modal"`)
}
