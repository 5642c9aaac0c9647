package server

import (
	"fmt"
	"strings"

	"github.com/trainyard/trainyard/integrations/slack"
	"github.com/trainyard/trainyard/workflows"
)

// releaseView is what the Slack messages show of a release's status.
func (s *Server) releaseView(st workflows.ReleaseStatus) slack.ReleaseView {
	v := slack.ReleaseView{
		ID: st.ID, Runbook: st.Runbook, Version: st.Version, Phase: string(st.Phase), Stage: st.CurrentStage,
		Environment: st.Environment, Requester: st.Requester.Name, Failure: st.Failure,
		PausedBy: st.PausedBy, PauseReason: st.PauseReason,
		StatusURL: s.statusURL(st.ID), TemporalURL: s.temporalUIURL(st.ID),
	}
	if s.deps.PublicURL == "" {
		v.StatusURL = ""
	}
	if s.deps.TemporalUIURL == "" {
		v.TemporalURL = ""
	}
	for _, c := range st.Components {
		v.Components = append(v.Components, slack.ComponentView{Name: c.Name, Version: c.Version})
	}
	if st.Risk != nil {
		rv := &slack.RiskView{Score: st.Risk.Score, Level: st.Risk.Level}
		for _, f := range st.Risk.Factors {
			if f.Points > 0 {
				rv.Factors = append(rv.Factors, fmt.Sprintf("%s +%.1f: %s", f.Name, f.Points, f.Why))
			}
		}
		v.Risk = rv
	}
	for _, stage := range st.Stages {
		for _, t := range stage.Targets {
			v.Targets = append(v.Targets, slack.TargetView{Stage: stage.Name, Name: t.Name, State: t.State})
		}
	}
	for _, g := range st.Gates {
		v.Gates = append(v.Gates, slack.GateView{Name: g.Name, State: g.State, Summary: g.Summary})
	}
	var preMortem []string
	for _, fm := range st.PreMortem {
		preMortem = append(preMortem, fm.Failure+" (ready: "+fm.Mitigation+")")
	}
	for _, a := range st.Approvals {
		if a.State == workflows.GateSkipped {
			continue
		}
		av := slack.ApprovalView{
			Gate: a.Gate, Before: a.Before, Roles: a.Roles, Required: a.Required, DistinctRoles: a.DistinctRoles,
			State: a.State, Why: a.Why, PreMortem: preMortem,
		}
		for _, d := range a.Decisions {
			if d.Decision == workflows.GateApproved {
				av.Approved++
			}
			av.Decisions = append(av.Decisions, slack.DecisionView{Actor: d.Actor, Decision: d.Decision, Comment: d.Comment, At: d.At})
		}
		v.Approvals = append(v.Approvals, av)
	}
	return v
}

// problemText is a refusal as a Slack reply: the API's words, escaped, with the located
// problems of a broken runbook under them.
func problemText(p *problem) string {
	text := slack.Escape(p.Detail)
	if strings.Contains(p.Detail, "unknown update") {
		// A release started before this Update existed does not know it.
		text = "This release does not take that request: it runs a workflow version from before it existed. " + text
	}
	var b strings.Builder
	b.WriteString(text)
	for i, pr := range p.Problems {
		if i == 10 {
			fmt.Fprintf(&b, "\n… and %d more", len(p.Problems)-i)
			break
		}
		fmt.Fprintf(&b, "\n• `%s`: %s", slack.Escape(pr.Path), slack.Escape(pr.Msg))
	}
	return b.String()
}

// usageText is a command's mistake and what to type instead.
func usageText(e *slack.UsageError) string {
	var lines []string
	for _, l := range strings.Split(e.Usage, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, "`"+slack.Escape(l)+"`")
		}
	}
	return slack.Escape(e.Problem) + "\nType " + strings.Join(lines, "\nor ") + "\n(`/release help` lists every command.)"
}

// channelRef is how a reply names a runbook's channel: a link for a channel id, the name
// otherwise.
func channelRef(channel string) string {
	if channel == "" {
		return ""
	}
	if strings.HasPrefix(channel, "#") {
		return slack.Escape(channel)
	}
	return "<#" + slack.Escape(channel) + ">"
}
