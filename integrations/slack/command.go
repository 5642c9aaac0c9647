package slack

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
)

// CommandName is the slash command the app manifest registers.
const CommandName = "/release"

// Verb is what a /release command asks for.
type Verb string

// Verbs of /release.
const (
	VerbStart    Verb = "start"
	VerbStatus   Verb = "status"
	VerbList     Verb = "list"
	VerbPause    Verb = "pause"
	VerbResume   Verb = "resume"
	VerbAbort    Verb = "abort"
	VerbRollback Verb = "rollback"
	VerbHelp     Verb = "help"
)

// usage is one line per verb, in the order HelpText lists them.
var usage = []struct {
	verb Verb
	line string
	what string
}{
	{VerbStart, "/release start <runbook> <version> [component=version ...]", "start a release of a runbook at a version, pinning components that differ"},
	{VerbStatus, "/release status [release-id]", "show a release, or the releases in progress"},
	{VerbList, "/release list", "list recent releases"},
	{VerbPause, "/release pause <release-id> [reason]", "hold a release before its next step"},
	{VerbResume, "/release resume <release-id> [reason]", "let a paused release go on"},
	{VerbAbort, "/release abort <release-id> [reason]", "stop a release and roll back what it deployed"},
	{VerbRollback, "/release rollback <release-id> [reason]", "roll a release back"},
	{VerbHelp, "/release help", "show this help"},
}

func usageOf(v Verb) string {
	for _, u := range usage {
		if u.verb == v {
			return u.line
		}
	}
	return ""
}

// ComponentVersion is one component=version argument of /release start.
type ComponentVersion struct {
	Name    string
	Version string
}

// Command is a parsed /release command. Which fields are set depends on Verb: Runbook, Version
// and Components for start; ReleaseID for status (optional) and the operator verbs; Reason
// (optional, as typed) for the operator verbs.
type Command struct {
	Verb       Verb
	Runbook    string
	Version    string
	Components []ComponentVersion
	ReleaseID  string
	Reason     string
}

// ErrUsage is what every UsageError is.
var ErrUsage = errors.New("invalid /release command")

// UsageError says what was wrong with a command and what to type instead. Its Error is meant
// for the person who typed the command (an ephemeral reply).
type UsageError struct {
	Problem string
	// Usage is the line to type instead ("/release start <runbook> <version> ..."), or the
	// whole help when the verb was unknown.
	Usage string
}

func (e *UsageError) Error() string {
	return e.Problem + "\nUsage: " + e.Usage
}

func (e *UsageError) Unwrap() error { return ErrUsage }

func usageErr(v Verb, format string, args ...any) *UsageError {
	return &UsageError{Problem: fmt.Sprintf(format, args...), Usage: usageOf(v)}
}

// ParseCommand reads the text after /release. Empty text is help. Nothing is started on an
// error: every argument is checked before a Command is returned.
func ParseCommand(text string) (Command, error) {
	text = unescapeSlack(strings.TrimSpace(text))
	if text == "" {
		return Command{Verb: VerbHelp}, nil
	}
	verbWord, rest := cutWord(text)
	verb := Verb(strings.ToLower(verbWord))
	switch verb {
	case VerbHelp:
		return Command{Verb: VerbHelp}, nil
	case VerbList:
		if rest != "" {
			return Command{}, usageErr(verb, "/release list takes no arguments (got %q).", rest)
		}
		return Command{Verb: VerbList}, nil
	case VerbStatus:
		id, more := cutWord(rest)
		if more != "" {
			return Command{}, usageErr(verb, "/release status takes at most one release id (got %q).", rest)
		}
		if err := checkToken(verb, "release id", id); id != "" && err != nil {
			return Command{}, err
		}
		return Command{Verb: VerbStatus, ReleaseID: id}, nil
	case VerbPause, VerbResume, VerbAbort, VerbRollback:
		id, reason := cutWord(rest)
		if id == "" {
			return Command{}, usageErr(verb, "Say which release to %s.", verb)
		}
		if err := checkToken(verb, "release id", id); err != nil {
			return Command{}, err
		}
		return Command{Verb: verb, ReleaseID: id, Reason: reason}, nil
	case VerbStart:
		return parseStart(rest)
	default:
		return Command{}, &UsageError{
			Problem: fmt.Sprintf("%q is not a /release command.", verbWord),
			Usage:   "\n" + usageLines(),
		}
	}
}

func parseStart(args string) (Command, error) {
	words := strings.Fields(args)
	if len(words) < 2 {
		return Command{}, usageErr(VerbStart, "Say which runbook and which version to release.")
	}
	c := Command{Verb: VerbStart, Runbook: words[0], Version: words[1]}
	if strings.Contains(c.Runbook, "=") {
		return Command{}, usageErr(VerbStart, "The runbook comes first, then the version; %q looks like a component.", c.Runbook)
	}
	if strings.Contains(c.Version, "=") {
		return Command{}, usageErr(VerbStart, "Give the release version before any component=version (got %q after the runbook).", c.Version)
	}
	if err := checkToken(VerbStart, "runbook", c.Runbook); err != nil {
		return Command{}, err
	}
	if err := checkToken(VerbStart, "version", c.Version); err != nil {
		return Command{}, err
	}
	seen := map[string]bool{}
	for _, w := range words[2:] {
		name, version, ok := strings.Cut(w, "=")
		if !ok || name == "" || version == "" || strings.Contains(version, "=") {
			return Command{}, usageErr(VerbStart, "%q is not component=version.", w)
		}
		if err := checkToken(VerbStart, "component", name); err != nil {
			return Command{}, err
		}
		if err := checkToken(VerbStart, "version", version); err != nil {
			return Command{}, err
		}
		if seen[name] {
			return Command{}, usageErr(VerbStart, "Component %q is given twice.", name)
		}
		seen[name] = true
		c.Components = append(c.Components, ComponentVersion{Name: name, Version: version})
	}
	return c, nil
}

// checkToken refuses what Slack's formatting turned into a link or mention (<...>), and
// control characters, which no runbook, version or release id contains.
func checkToken(v Verb, what, s string) error {
	if strings.ContainsAny(s, "<>|`*") {
		return usageErr(v, "The %s %q contains characters Slack formatted or that no %s has; type it as plain text.", what, s, what)
	}
	for _, r := range s {
		if r < ' ' || r == 0x7f {
			return usageErr(v, "The %s %q contains a control character.", what, s)
		}
	}
	return nil
}

// cutWord splits s at its first run of whitespace.
func cutWord(s string) (word, rest string) {
	s = strings.TrimSpace(s)
	i := strings.IndexFunc(s, unicode.IsSpace)
	if i < 0 {
		return s, ""
	}
	return s[:i], strings.TrimSpace(s[i:])
}

// unescapeSlack undoes the three escapes Slack applies to command text.
func unescapeSlack(s string) string {
	return strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&").Replace(s)
}

func usageLines() string {
	var b strings.Builder
	for i, u := range usage {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(u.line)
	}
	return b.String()
}

// HelpText is the reply to /release help, in Slack mrkdwn.
func HelpText() string {
	var b strings.Builder
	b.WriteString("*Trainyard* runs releases. Commands:\n")
	for _, u := range usage {
		fmt.Fprintf(&b, "• `%s` — %s\n", u.line, u.what)
	}
	b.WriteString("Approve or reject with the buttons on an approval request.")
	return b.String()
}
