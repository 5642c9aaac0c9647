package config

import (
	"fmt"
	"slices"
	"strings"
)

// Group gives its roles to its members: principals of the API and people Slack maps to a
// principal name. A release-managers group keeps the role list in one place instead of on
// every person.
type Group struct {
	Name    string   `yaml:"name"`
	Roles   []string `yaml:"roles"`
	Members []string `yaml:"members"`
}

// RolesOf returns name's own roles (from principals) together with those of every group that
// lists name as a member, sorted and without repeats.
func (c Config) RolesOf(name string, own []string) []string {
	roles := slices.Clone(own)
	for _, g := range c.Groups {
		if slices.Contains(g.Members, name) {
			roles = append(roles, g.Roles...)
		}
	}
	slices.Sort(roles)
	return slices.Compact(roles)
}

// ResolvedPrincipals are the API principals with their groups' roles added.
func (c Config) ResolvedPrincipals() []Principal {
	out := make([]Principal, len(c.Principals))
	for i, p := range c.Principals {
		p.Roles = c.RolesOf(p.Name, p.Roles)
		out[i] = p
	}
	return out
}

func (c Config) validateGroups() []error {
	var errs []error
	seen := map[string]bool{}
	for i, g := range c.Groups {
		key := fmt.Sprintf("groups[%d]", i)
		switch {
		case strings.TrimSpace(g.Name) == "":
			errs = append(errs, fmt.Errorf("%s.name is empty", key))
		case seen[g.Name]:
			errs = append(errs, fmt.Errorf("%s.name %q is used twice", key, g.Name))
		}
		seen[g.Name] = true
		if len(g.Roles) == 0 {
			errs = append(errs, fmt.Errorf("%s (%s) gives no roles: list them, such as [release-manager]", key, g.Name))
		}
		for j, r := range g.Roles {
			if strings.TrimSpace(r) == "" {
				errs = append(errs, fmt.Errorf("%s.roles[%d] is empty", key, j))
			}
		}
		for j, m := range g.Members {
			if strings.TrimSpace(m) == "" {
				errs = append(errs, fmt.Errorf("%s.members[%d] is empty", key, j))
			}
		}
	}
	return errs
}
