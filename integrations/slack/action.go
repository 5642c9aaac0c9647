package slack

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	goslack "github.com/slack-go/slack"
)

// ActionKind is what a button or the reject modal asks Trainyard to do.
type ActionKind string

// Action kinds.
const (
	KindApprove  ActionKind = "approve"
	KindReject   ActionKind = "reject"
	KindAbort    ActionKind = "abort"
	KindRollback ActionKind = "rollback"
	// KindCancel dismisses the confirmation that /release abort and rollback answer with.
	KindCancel ActionKind = "cancel"
)

// The wire format of Trainyard's buttons and modal, kept stable because messages already posted
// carry it:
//
//   - action_id is "trainyard." + kind: trainyard.approve, trainyard.reject, trainyard.abort,
//     trainyard.rollback, trainyard.cancel.
//   - value is QueryEscape(release id) + "|" + QueryEscape(gate); the gate is empty for abort
//     and rollback. QueryEscape escapes "|", so the split is unambiguous. Buttons whose value
//     would be longer than MaxValueLen are not rendered. The confirmation of /release abort
//     and rollback adds a third part, "|" + QueryEscape(reason), the reason typed with the
//     command (OperatorValue, up to MaxOperatorValueLen, Slack's own limit).
//   - the reject modal has callback_id RejectCallbackID, its reason is the plain-text input
//     RejectReasonActionID in the input block RejectReasonBlockID, and its private_metadata is
//     the JSON object {"release":…,"gate":…,"channel":…,"ts":…} (the message to update).
const (
	actionPrefix = "trainyard."
	// MaxValueLen bounds a button's value. Slack allows 2000 characters there; Trainyard keeps
	// to 255, Slack's limit for action_id and block_id, so the value stays valid if it is ever
	// moved into either.
	MaxValueLen = 255
	// MaxOperatorValueLen bounds the value of a confirmation button, which carries a reason:
	// Slack's limit on a button's value.
	MaxOperatorValueLen = 2000

	RejectCallbackID     = "trainyard.reject_modal"
	RejectReasonBlockID  = "reason"
	RejectReasonActionID = "reason"
	// maxReason bounds the reject reason (plain_text_input allows up to 3000).
	maxReason = 2000
)

// ActionID is the action_id of kind's button.
func ActionID(kind ActionKind) string { return actionPrefix + string(kind) }

// ActionValue is the value of a button acting on gate of releaseID, or an error when it would
// exceed MaxValueLen.
func ActionValue(releaseID, gate string) (string, error) {
	v := url.QueryEscape(releaseID) + "|" + url.QueryEscape(gate)
	if len(v) > MaxValueLen {
		return "", fmt.Errorf("release id %q and gate %q are too long for a slack button (%d > %d characters)", releaseID, gate, len(v), MaxValueLen)
	}
	return v, nil
}

// OperatorValue is the value of the button that confirms /release abort or rollback: the
// release and the reason typed with the command (may be empty). An error says the reason is
// too long for a button.
func OperatorValue(releaseID, reason string) (string, error) {
	v := url.QueryEscape(releaseID) + "||" + url.QueryEscape(reason)
	if len(v) > MaxOperatorValueLen {
		return "", fmt.Errorf("the reason is too long for a slack button (%d > %d characters once encoded); shorten it", len(v), MaxOperatorValueLen)
	}
	return v, nil
}

func parseActionValue(v string) (releaseID, gate, reason string, err error) {
	parts := strings.SplitN(v, "|", 3)
	if len(parts) < 2 {
		return "", "", "", fmt.Errorf("button value %q is not release|gate", v)
	}
	if releaseID, err = url.QueryUnescape(parts[0]); err != nil || releaseID == "" {
		return "", "", "", fmt.Errorf("button value %q has no readable release id", v)
	}
	if gate, err = url.QueryUnescape(parts[1]); err != nil {
		return "", "", "", fmt.Errorf("button value %q has no readable gate", v)
	}
	if len(parts) == 3 {
		if reason, err = url.QueryUnescape(parts[2]); err != nil {
			return "", "", "", fmt.Errorf("button value %q has no readable reason", v)
		}
	}
	return releaseID, gate, reason, nil
}

// Action is a person's click or modal submission, in Trainyard's terms. Reason is set by the
// reject modal and by the confirmation of /release abort and rollback; a reject button click
// has none and is answered by opening RejectModal with TriggerID. ChannelID and MessageTS name the message the action came from (for a modal: the
// message it was opened from).
type Action struct {
	Kind        ActionKind
	ReleaseID   string
	Gate        string
	UserID      string
	TeamID      string
	UserName    string
	ResponseURL string
	TriggerID   string
	ChannelID   string
	MessageTS   string
	Reason      string
	// Ephemeral: the click came from a message only its reader sees (the confirmation of
	// /release abort or rollback), which an answer may replace.
	Ephemeral bool
}

// ErrNotTrainyard: the interaction is not one of Trainyard's buttons or modals (another app's
// element, a modal being closed, a shortcut). Answer 200 and do nothing.
var ErrNotTrainyard = errors.New("slack interaction is not a trainyard action")

// ErrMalformed: the interaction claims to be Trainyard's but cannot be read.
var ErrMalformed = errors.New("slack interaction is malformed")

// InvalidSubmissionError is a modal submission Slack should refuse inside the modal: answer
// with ViewErrors(e.Errors).
type InvalidSubmissionError struct {
	// Errors maps an input block id to the message shown under it.
	Errors map[string]string
}

func (e *InvalidSubmissionError) Error() string {
	parts := make([]string, 0, len(e.Errors))
	for block, msg := range e.Errors {
		parts = append(parts, block+": "+msg)
	}
	return "invalid modal submission: " + strings.Join(parts, "; ")
}

// ParseInteraction turns a block_actions or view_submission payload into an Action.
// Errors: ErrNotTrainyard (ignore), ErrMalformed, *InvalidSubmissionError (refuse in the modal).
func ParseInteraction(cb goslack.InteractionCallback) (Action, error) {
	switch cb.Type {
	case goslack.InteractionTypeBlockActions:
		return parseBlockAction(cb)
	case goslack.InteractionTypeViewSubmission:
		return parseRejectSubmission(cb)
	default:
		return Action{}, ErrNotTrainyard
	}
}

func who(cb goslack.InteractionCallback) Action {
	a := Action{
		UserID:      cb.User.ID,
		TeamID:      cb.Team.ID,
		UserName:    cb.User.Name,
		ResponseURL: cb.ResponseURL,
		TriggerID:   cb.TriggerID,
	}
	if a.UserName == "" {
		a.UserName = cb.User.Username
	}
	if a.TeamID == "" {
		a.TeamID = cb.User.TeamID
	}
	return a
}

func parseBlockAction(cb goslack.InteractionCallback) (Action, error) {
	for _, ba := range cb.ActionCallback.BlockActions {
		if ba == nil || !strings.HasPrefix(ba.ActionID, actionPrefix) {
			continue
		}
		kind := ActionKind(strings.TrimPrefix(ba.ActionID, actionPrefix))
		switch kind {
		case KindApprove, KindReject, KindAbort, KindRollback, KindCancel:
		default:
			return Action{}, fmt.Errorf("%w: unknown action %q", ErrMalformed, ba.ActionID)
		}
		id, gate, reason, err := parseActionValue(ba.Value)
		if err != nil {
			return Action{}, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		if (kind == KindApprove || kind == KindReject) && gate == "" {
			return Action{}, fmt.Errorf("%w: %s button without a gate", ErrMalformed, kind)
		}
		if kind == KindAbort || kind == KindRollback {
			reason = strings.TrimSpace(reason)
		} else {
			reason = ""
		}
		a := who(cb)
		a.Kind, a.ReleaseID, a.Gate, a.Reason = kind, id, gate, reason
		a.ChannelID = cb.Container.ChannelID
		if a.ChannelID == "" {
			a.ChannelID = cb.Channel.ID
		}
		a.MessageTS = cb.Container.MessageTs
		if a.MessageTS == "" {
			a.MessageTS = cb.Message.Timestamp
		}
		a.Ephemeral = cb.Container.IsEphemeral
		return a, nil
	}
	return Action{}, ErrNotTrainyard
}

// rejectMetadata is the reject modal's private_metadata.
type rejectMetadata struct {
	Release string `json:"release"`
	Gate    string `json:"gate"`
	Channel string `json:"channel,omitempty"`
	TS      string `json:"ts,omitempty"`
}

func parseRejectSubmission(cb goslack.InteractionCallback) (Action, error) {
	if cb.View.CallbackID != RejectCallbackID {
		return Action{}, ErrNotTrainyard
	}
	var md rejectMetadata
	if err := json.Unmarshal([]byte(cb.View.PrivateMetadata), &md); err != nil || md.Release == "" || md.Gate == "" {
		return Action{}, fmt.Errorf("%w: reject modal metadata %q does not name a release and gate", ErrMalformed, cb.View.PrivateMetadata)
	}
	a := who(cb)
	a.Kind, a.ReleaseID, a.Gate, a.ChannelID, a.MessageTS = KindReject, md.Release, md.Gate, md.Channel, md.TS
	if a.ResponseURL == "" && len(cb.ResponseURLs) > 0 {
		a.ResponseURL = cb.ResponseURLs[0].ResponseURL
	}
	if cb.View.State != nil {
		a.Reason = strings.TrimSpace(cb.View.State.Values[RejectReasonBlockID][RejectReasonActionID].Value)
	}
	if a.Reason == "" {
		return a, &InvalidSubmissionError{Errors: map[string]string{RejectReasonBlockID: "Say why you reject this release; the reason goes to the requester and the audit log."}}
	}
	if n := len([]rune(a.Reason)); n > maxReason {
		return a, &InvalidSubmissionError{Errors: map[string]string{RejectReasonBlockID: fmt.Sprintf("Keep the reason under %d characters (it has %d).", maxReason, n)}}
	}
	return a, nil
}

// RejectModal is the modal a reject button opens: it asks for the reason and carries the
// release, gate and the message to update in its private_metadata.
func RejectModal(releaseID, gate, channel, ts string) goslack.ModalViewRequest {
	md, _ := json.Marshal(rejectMetadata{Release: releaseID, Gate: gate, Channel: channel, TS: ts}) // strings always marshal
	input := goslack.NewPlainTextInputBlockElement(plain("What is wrong, and what would make you approve?"), RejectReasonActionID).
		WithMultiline(true).WithMinLength(1).WithMaxLength(maxReason)
	return goslack.ModalViewRequest{
		Type:            goslack.VTModal,
		CallbackID:      RejectCallbackID,
		Title:           plain("Reject release"),
		Submit:          plain("Reject"),
		Close:           plain("Cancel"),
		PrivateMetadata: string(md),
		Blocks: goslack.Blocks{BlockSet: []goslack.Block{
			goslack.NewSectionBlock(mrkdwn(fmt.Sprintf("Reject *%s* of `%s`. The release ends rejected.", esc(truncate(gate, 200)), esc(truncate(releaseID, 300)))), nil, nil),
			goslack.NewInputBlock(RejectReasonBlockID, plain("Reason"), nil, input),
		}},
	}
}

// ViewErrors is the answer to a view_submission that the modal should refuse, showing each
// message under its input block: {"response_action":"errors","errors":{...}}. It serves as the
// HTTP response body (JSON) and as the Socket Mode ack payload.
func ViewErrors(errs map[string]string) *goslack.ViewSubmissionResponse {
	return goslack.NewErrorsViewSubmissionResponse(errs)
}
