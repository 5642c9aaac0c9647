// Package logtail keeps the end of a child process's output (PostgreSQL, Prometheus), so an
// error can quote the lines that say why it failed.
package logtail

import (
	"strings"
	"sync"
)

// Buffer keeps the last max bytes written to it; safe for concurrent use.
type Buffer struct {
	mu  sync.Mutex
	buf []byte
	max int
}

// New returns a buffer keeping the last max bytes.
func New(max int) *Buffer { return &Buffer{max: max} }

// Write keeps p, dropping the oldest bytes past the bound.
func (t *Buffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

// LastLines returns the last n lines kept.
func (t *Buffer) LastLines(n int) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return LastLines(string(t.buf), n)
}

// LastLines returns the last n lines of s.
func LastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// StartupError says why a child process did not start: what was tried, the cause, a hint
// when one is known, and the end of the process's log, where the real reason usually is.
type StartupError struct {
	Msg  string
	Err  error
	Hint string
	// Log names the log the tail comes from ("postgres log").
	Log  string
	Tail string
}

func (e *StartupError) Error() string {
	var b strings.Builder
	b.WriteString(e.Msg)
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	if e.Hint != "" {
		b.WriteString("\nhint: ")
		b.WriteString(e.Hint)
	}
	if e.Tail != "" {
		b.WriteString("\n" + e.Log + ", last lines:\n")
		b.WriteString(e.Tail)
	}
	return b.String()
}

func (e *StartupError) Unwrap() error { return e.Err }
