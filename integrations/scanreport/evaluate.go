package scanreport

import (
	"fmt"
	"slices"
	"strings"
)

// Verdict is a gate's decision on a report.
type Verdict struct {
	// Passed is true when nothing blocks.
	Passed bool `json:"passed"`
	// Blocking are the unwaived findings at or above the gate's severity, most severe first.
	Blocking []Finding `json:"blocking"`
	// Waived are the findings that would have blocked but for a waiver, most severe first.
	Waived []Finding `json:"waived"`
	// Counts has every finding of the report by severity name, each name present.
	Counts map[string]int `json:"counts"`
	// Summary is one line for a person: what blocks and why, or why it passed.
	Summary string `json:"summary"`
}

// maxListed bounds how many blocking findings Summary names.
const maxListed = 5

// Evaluate decides a gate: a finding at or above failAt blocks unless waived(finding.ID)
// says it is waived. A nil waived waives nothing. Unknown as failAt blocks on every finding.
func Evaluate(r Report, failAt Severity, waived func(findingID string) bool) Verdict {
	v := Verdict{Blocking: []Finding{}, Waived: []Finding{}, Counts: map[string]int{}}
	for s := Unknown; s <= Critical; s++ {
		v.Counts[s.String()] = 0
	}
	for _, f := range r.Findings {
		v.Counts[f.Severity.String()]++
		if f.Severity < failAt {
			continue
		}
		if waived != nil && waived(f.ID) {
			v.Waived = append(v.Waived, f)
		} else {
			v.Blocking = append(v.Blocking, f)
		}
	}
	bySeverity := func(a, b Finding) int { return int(b.Severity) - int(a.Severity) }
	slices.SortStableFunc(v.Blocking, bySeverity)
	slices.SortStableFunc(v.Waived, bySeverity)
	v.Passed = len(v.Blocking) == 0
	v.Summary = summary(r, failAt, v)
	return v
}

func summary(r Report, failAt Severity, v Verdict) string {
	var s string
	switch {
	case len(r.Findings) == 0:
		s = "no findings"
	case !v.Passed:
		var items []string
		seen := map[string]bool{}
		for _, f := range v.Blocking {
			item := f.ID
			if item == "" {
				item = f.Title
			}
			if f.Location != "" {
				item += " in " + f.Location
			}
			if !seen[item] {
				seen[item] = true
				items = append(items, item)
			}
		}
		if len(items) > maxListed {
			items = append(items[:maxListed], fmt.Sprintf("and %d more", len(items)-maxListed))
		}
		s = fmt.Sprintf("%s blocking (%s)", countText(v.Blocking), strings.Join(items, ", "))
	default:
		s = "none at or above " + failAt.String()
		var below []Finding
		for _, f := range r.Findings {
			if f.Severity < failAt {
				below = append(below, f)
			}
		}
		if len(below) > 0 {
			s += "; " + countText(below) + " below"
		}
	}
	if len(v.Waived) > 0 {
		s += fmt.Sprintf("; %d waived", len(v.Waived))
	}
	return s
}

// countText counts findings by severity, most severe first: "2 critical, 1 high".
func countText(fs []Finding) string {
	var parts []string
	for s := Critical; s >= Unknown; s-- {
		n := 0
		for _, f := range fs {
			if f.Severity == s {
				n++
			}
		}
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, s))
		}
	}
	return strings.Join(parts, ", ")
}
