package slack

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"unicode"

	goslack "github.com/slack-go/slack"
)

// Fake is an in-memory Client for tests of packages that talk to Slack through this one. It
// keeps every message by channel id and ts, so a test reads what a person would see, and
// answers users.info and usergroups.users.list from Emails and Groups. Like Slack, it accepts
// a #name when posting, answers with the channel's id (from Channels, or "C" and the name in
// capitals), and accepts only ids in chat.update. Err, when set, fails every call whose method
// name it returns an error for. Safe for concurrent use.
type Fake struct {
	// Channels maps a channel name (without #) to its id.
	Channels map[string]string
	// Emails maps user id → email; Groups maps user group id → member user ids.
	Emails map[string]string
	Groups map[string][]string
	// Err is consulted before each call with the Slack method name ("chat.postMessage",
	// "chat.update", "chat.postEphemeral", "views.open", "users.info", "usergroups.users.list",
	// "response_url").
	Err func(method string) error

	mu         sync.Mutex
	seq        int
	messages   []FakeMessage
	ephemerals []FakeEphemeral
	views      []FakeView
	responses  []FakeResponse
	calls      map[string]int
}

// FakeMessage is a posted message as it stands (updates applied).
type FakeMessage struct {
	Channel  string
	TS       string
	ThreadTS string
	// Broadcast: a thread reply also shown in the channel.
	Broadcast bool
	Text      string
	Blocks    []goslack.Block
	// Updates counts the chat.update calls applied.
	Updates int
}

// FakeEphemeral is one chat.postEphemeral.
type FakeEphemeral struct{ Channel, User, Text string }

// FakeView is one views.open.
type FakeView struct {
	TriggerID string
	View      goslack.ModalViewRequest
}

// FakeResponse is one post to a response_url.
type FakeResponse struct {
	URL, Text       string
	ReplaceOriginal bool
}

var _ Client = (*Fake)(nil)

// NewFake returns an empty Fake.
func NewFake() *Fake {
	return &Fake{Channels: map[string]string{}, Emails: map[string]string{}, Groups: map[string][]string{}}
}

func (f *Fake) enter(method string) error {
	f.mu.Lock()
	if f.calls == nil {
		f.calls = map[string]int{}
	}
	f.calls[method]++
	errf := f.Err
	f.mu.Unlock()
	if errf != nil {
		return errf(method)
	}
	return nil
}

// PostMessage implements Client.
func (f *Fake) PostMessage(_ context.Context, m Message) (Posted, error) {
	if err := f.enter("chat.postMessage"); err != nil {
		return Posted{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	channel := f.channelID(m.Channel)
	if m.ThreadTS != "" && !f.has(channel, m.ThreadTS) {
		return Posted{}, fmt.Errorf("post slack message to %s: %w", m.Channel, goslack.SlackErrorResponse{Err: "thread_not_found"})
	}
	f.seq++
	ts := fmt.Sprintf("1700000000.%06d", f.seq)
	f.messages = append(f.messages, FakeMessage{
		Channel: channel, TS: ts, ThreadTS: m.ThreadTS, Broadcast: m.Broadcast && m.ThreadTS != "",
		Text: m.Text, Blocks: slices.Clone(m.Blocks),
	})
	return Posted{Channel: channel, TS: ts}, nil
}

// channelID resolves a #name as Slack does; f.mu is held.
func (f *Fake) channelID(channel string) string {
	name, ok := strings.CutPrefix(channel, "#")
	if !ok {
		return channel
	}
	if id, ok := f.Channels[name]; ok {
		return id
	}
	return "C" + strings.ToUpper(strings.Map(func(r rune) rune {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			return r
		}
		return -1
	}, name))
}

// has reports whether a message exists; f.mu is held.
func (f *Fake) has(channel, ts string) bool {
	for _, m := range f.messages {
		if m.Channel == channel && m.TS == ts {
			return true
		}
	}
	return false
}

// UpdateMessage implements Client; an unknown message is Slack's message_not_found, and a
// channel given by name its channel_not_found.
func (f *Fake) UpdateMessage(_ context.Context, channel, ts string, blocks []goslack.Block, text string) error {
	if err := f.enter("chat.update"); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if strings.HasPrefix(channel, "#") {
		return fmt.Errorf("update slack message %s in %s: %w", ts, channel, goslack.SlackErrorResponse{Err: "channel_not_found"})
	}
	for i := range f.messages {
		if m := &f.messages[i]; m.Channel == channel && m.TS == ts {
			m.Text, m.Blocks = text, slices.Clone(blocks)
			m.Updates++
			return nil
		}
	}
	return fmt.Errorf("update slack message %s in %s: %w", ts, channel, goslack.SlackErrorResponse{Err: "message_not_found"})
}

// PostEphemeral implements Client.
func (f *Fake) PostEphemeral(_ context.Context, channel, user, text string) error {
	if err := f.enter("chat.postEphemeral"); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ephemerals = append(f.ephemerals, FakeEphemeral{Channel: channel, User: user, Text: text})
	return nil
}

// OpenView implements Client.
func (f *Fake) OpenView(_ context.Context, triggerID string, view goslack.ModalViewRequest) error {
	if err := f.enter("views.open"); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.views = append(f.views, FakeView{TriggerID: triggerID, View: view})
	return nil
}

// RespondURL implements Client.
func (f *Fake) RespondURL(_ context.Context, responseURL, text string, replaceOriginal bool) error {
	if err := f.enter("response_url"); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.responses = append(f.responses, FakeResponse{URL: responseURL, Text: text, ReplaceOriginal: replaceOriginal})
	return nil
}

// UserEmail implements Users; a user without an email is ErrNoEmail, an unknown one
// user_not_found.
func (f *Fake) UserEmail(_ context.Context, userID string) (string, error) {
	if err := f.enter("users.info"); err != nil {
		return "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	email, ok := f.Emails[userID]
	if !ok {
		return "", fmt.Errorf("look up slack user %s: %w", userID, goslack.SlackErrorResponse{Err: "user_not_found"})
	}
	if email == "" {
		return "", fmt.Errorf("look up slack user %s: %w", userID, ErrNoEmail)
	}
	return email, nil
}

// UserGroupMembers implements Users; an unknown group is no_such_subteam.
func (f *Fake) UserGroupMembers(_ context.Context, groupID string) ([]string, error) {
	if err := f.enter("usergroups.users.list"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	members, ok := f.Groups[groupID]
	if !ok {
		return nil, fmt.Errorf("list members of slack user group %s: %w", groupID, goslack.SlackErrorResponse{Err: "no_such_subteam"})
	}
	return slices.Clone(members), nil
}

// Messages are the messages posted so far, oldest first.
func (f *Fake) Messages() []FakeMessage {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.messages)
}

// Message is the message at channel and ts.
func (f *Fake) Message(channel, ts string) (FakeMessage, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range f.messages {
		if m.Channel == channel && m.TS == ts {
			return m, true
		}
	}
	return FakeMessage{}, false
}

// Ephemerals are the ephemeral messages posted so far.
func (f *Fake) Ephemerals() []FakeEphemeral {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.ephemerals)
}

// Views are the modals opened so far.
func (f *Fake) Views() []FakeView {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.views)
}

// Responses are the posts to response URLs so far.
func (f *Fake) Responses() []FakeResponse {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.responses)
}

// Calls is how many times method was called, failed calls included.
func (f *Fake) Calls(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[method]
}
