package scanreport

import (
	"errors"
	"fmt"
	"strings"
)

// Severity orders findings: Unknown < Low < Medium < High < Critical.
type Severity int

// Severities.
const (
	// Unknown is a severity the scanner did not give or that this package does not know.
	// It is the zero value, so Evaluate with a zero failAt blocks on every finding.
	Unknown Severity = iota
	Low
	Medium
	High
	Critical
)

var severityNames = [...]string{Unknown: "unknown", Low: "low", Medium: "medium", High: "high", Critical: "critical"}

// ErrInvalidSeverity: a severity name is not one this package knows.
var ErrInvalidSeverity = errors.New("invalid severity")

func (s Severity) String() string {
	if s.valid() {
		return severityNames[s]
	}
	return fmt.Sprintf("severity(%d)", int(s))
}

func (s Severity) valid() bool { return s >= Unknown && s <= Critical }

// ParseSeverity reads low, medium, high or critical, in any case: the severities a gate can
// fail at.
func ParseSeverity(s string) (Severity, error) {
	sev, err := severityFromName(s)
	if err != nil || sev == Unknown {
		return Unknown, fmt.Errorf("%w: %q; use low, medium, high or critical", ErrInvalidSeverity, s)
	}
	return sev, nil
}

func severityFromName(s string) (Severity, error) {
	name := strings.ToLower(strings.TrimSpace(s))
	for i, n := range severityNames {
		if n == name {
			return Severity(i), nil
		}
	}
	return Unknown, fmt.Errorf("%w: %q; use unknown, low, medium, high or critical", ErrInvalidSeverity, s)
}

// MarshalText writes the lowercase name, so JSON holds "high", not 3.
func (s Severity) MarshalText() ([]byte, error) {
	if !s.valid() {
		return nil, fmt.Errorf("%w: %d", ErrInvalidSeverity, int(s))
	}
	return []byte(severityNames[s]), nil
}

// UnmarshalText reads what MarshalText writes, in any case.
func (s *Severity) UnmarshalText(b []byte) error {
	sev, err := severityFromName(string(b))
	if err != nil {
		return err
	}
	*s = sev
	return nil
}
