package runbooks

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// maxExtendsDepth is how many bases a chain may have (team → base → base → base).
const maxExtendsDepth = 3

// Resolved is a runbook with its bases merged in.
type Resolved struct {
	Runbook Runbook
	// Base is the base file the runbook extends, as written in extends ("" when none).
	Base string
	// Applied are the exceptions that dropped inherited items, the deepest base's first.
	Applied []Exception
	// Hash is Hash(Runbook): it changes when the runbook or any of its bases changes.
	Hash string
}

// LoadResolved reads a runbook file, merges the bases it extends, and reports the exceptions
// it applied. LoadFile returns the same runbook.
//
// Shared standards: a runbook may extend a base runbook file that declares what every release
// of an organisation must go through.
//
//	extends: base/standard.yaml   # relative to this file's folder
//	exceptions:
//	  - remove: readiness/image-scan
//	    waiver: WVR-2026-014
//	    reason: the scanner does not support this image format yet
//
// A base is a runbook file without stages (and usually without a name): it declares only
// standards: approvals, readiness (gates and the risk model), freezes, onFreeze, cab,
// changeRequest, rollbackAuthority and rollback. Put bases in a subfolder (base/) so the
// Catalog, which reads only the files directly in its folder, does not offer them as
// releasable runbooks. A base may itself extend another base, at most 3 deep; cycles, absolute
// paths and paths leaving the folder of the runbook being loaded are refused.
//
// The merge, base first:
//   - The base's approvals and readiness gates are mandatory and come first; the runbook adds
//     its own after them. Redefining one (same name) is refused; an exception drops it (and
//     the runbook may then declare its own of that name in its place).
//   - freezes and rollbackAuthority: the union.
//   - cab, changeRequest, rollback, readiness.risk and onFreeze come from the base unless the
//     runbook sets them. Where both set them the runbook may only tighten: cab.when and
//     changeRequest.when are combined with || (the CAB and the change request apply whenever
//     either says so); cab.roles and changeRequest.provider must match the base's (the
//     runbook may set its own assignmentGroup and template); rollback.budget takes the
//     shorter, rollback.forwardFix needs both to allow it, rollback.scope and
//     circuitBreaker are the runbook's when set; the risk model cannot be redefined; onFreeze
//     is the runbook's when set (wait and fail both honour the freeze).
//   - Each exception removes one inherited item ("approvals/<name>" or "readiness/<gate>"),
//     names its waiver and a reason; an exception naming what the base does not declare, or
//     in a runbook that extends nothing, is refused.
//
// The merged runbook is validated again (an inherited approval must hold a stage the runbook
// has), with each problem reported in the file, and at the line, it comes from.
func LoadResolved(path string) (Resolved, error) {
	res, _, err := loadResolved(path)
	return res, err
}

// loadResolved also returns the base files read: a cache of parsed runbooks must look at
// them too, or an edited base would not reach the runbooks extending it.
func loadResolved(path string) (Resolved, []string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Resolved{}, nil, fmt.Errorf("read runbook: %w", err)
	}
	rb, err := Parse(filepath.Base(path), data)
	if err != nil {
		return Resolved{Runbook: rb}, nil, err
	}
	return resolve(path, data, rb)
}

// resolveExtends merges the base runbook named by rb.Extends (a path relative to the file at
// path) into rb: the base's approvals and readiness gates are mandatory, and only an
// exception backed by a waiver drops one.
func resolveExtends(path string, rb Runbook) (Runbook, error) {
	if rb.Extends == "" && len(rb.Exceptions) == 0 {
		return rb, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return rb, fmt.Errorf("read runbook: %w", err)
	}
	res, _, err := resolve(path, data, rb)
	return res.Runbook, err
}

// source is one file of an extends chain.
type source struct {
	// file names it in problems: the base name of the runbook being loaded, and the path of
	// a base relative to that runbook's folder (base/standard.yaml).
	file string
	path string
	real string
	root *yaml.Node
	rb   Runbook
}

// origin is where an item of a merged list, or a merged section, is declared.
type origin struct {
	src  *source
	path string
}

// merged is a runbook with its bases merged in, remembering where each inherited item is
// declared so problems are reported there.
type merged struct {
	self      *source
	rb        Runbook
	applied   []Exception
	approvals []origin // parallel to rb.Approvals
	gates     []origin // parallel to rb.Readiness.Gates
	// sections maps cab, changeRequest, rollback, readiness.risk and onFreeze to where they
	// come from, when not from the runbook itself.
	sections map[string]origin
	freezes  []origin
	rollback []origin // parallel to rb.RollbackAuthority
}

type extendsResolver struct {
	top    *source
	topDir string // absolute
	root   string // topDir with symlinks resolved
	bases  []string
}

func resolve(path string, data []byte, rb Runbook) (Resolved, []string, error) {
	res := Resolved{Runbook: rb, Base: rb.Extends}
	if rb.Extends == "" && len(rb.Exceptions) == 0 {
		res.Hash = Hash(rb)
		return res, nil, nil
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return res, nil, fmt.Errorf("resolve runbook path: %w", err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return res, nil, &InvalidError{Problems: yamlProblems(filepath.Base(path), err)}
	}
	r := &extendsResolver{topDir: filepath.Dir(abs)}
	r.root = r.topDir
	if real, err := filepath.EvalSymlinks(r.topDir); err == nil {
		r.root = real
	}
	r.top = &source{file: filepath.Base(path), path: abs, real: realPath(abs), root: &root, rb: rb}
	m, problems := r.resolveSource(r.top, 0, []*source{r.top})
	if len(problems) == 0 {
		problems = r.validateMerged(m)
	}
	if len(problems) > 0 {
		return res, r.bases, &InvalidError{Problems: r.sortProblems(problems)}
	}
	res.Runbook = m.rb
	res.Applied = m.applied
	res.Hash = Hash(m.rb)
	return res, r.bases, nil
}

func realPath(p string) string {
	if real, err := filepath.EvalSymlinks(p); err == nil {
		return real
	}
	return filepath.Clean(p)
}

// problem locates a problem at path in src.
func (s *source) problem(path, format string, args ...any) Problem {
	p := Problem{File: s.file, Path: path, Msg: fmt.Sprintf(format, args...)}
	if s.root != nil {
		p.Line, p.Column = positionOf(s.root, path)
	}
	return p
}

// sortProblems puts the runbook's own problems first, then each base's, each in line order.
func (r *extendsResolver) sortProblems(ps []Problem) []Problem {
	sort.SliceStable(ps, func(i, j int) bool {
		ti, tj := ps[i].File == r.top.file, ps[j].File == r.top.file
		if ti != tj {
			return ti
		}
		if ps[i].File != ps[j].File {
			return ps[i].File < ps[j].File
		}
		if ps[i].Line != ps[j].Line {
			return ps[i].Line < ps[j].Line
		}
		return ps[i].Column < ps[j].Column
	})
	return ps
}

// identity is src merged with nothing.
func identity(src *source) *merged {
	m := &merged{self: src, rb: src.rb, sections: map[string]origin{}}
	for i := range src.rb.Approvals {
		m.approvals = append(m.approvals, origin{src, fmt.Sprintf("approvals[%d]", i)})
	}
	if src.rb.Readiness != nil {
		for i := range src.rb.Readiness.Gates {
			m.gates = append(m.gates, origin{src, fmt.Sprintf("readiness.gates[%d]", i)})
		}
	}
	for i := range src.rb.Freezes {
		m.freezes = append(m.freezes, origin{src, fmt.Sprintf("freezes[%d]", i)})
	}
	for i := range src.rb.RollbackAuthority {
		m.rollback = append(m.rollback, origin{src, fmt.Sprintf("rollbackAuthority[%d]", i)})
	}
	return m
}

// resolveSource merges the chain of bases under src into src. chain is the files from the
// runbook being loaded down to src.
func (r *extendsResolver) resolveSource(src *source, depth int, chain []*source) (*merged, []Problem) {
	if src.rb.Extends == "" {
		if len(src.rb.Exceptions) > 0 {
			return nil, []Problem{src.problem("exceptions", "exceptions drop items inherited through extends, and this runbook extends nothing; remove the exceptions or add extends: base/<file>.yaml")}
		}
		return identity(src), nil
	}
	base, p := r.locateBase(src, depth, chain)
	if p != nil {
		return nil, []Problem{*p}
	}
	data, err := os.ReadFile(base.path)
	if err != nil {
		msg := err.Error()
		if errors.Is(err, os.ErrNotExist) {
			msg = "no such file"
		}
		return nil, []Problem{src.problem("extends", "cannot read %s: %s (extends is relative to this file's folder)", base.file, msg)}
	}
	r.bases = append(r.bases, base.path)
	if ps := parseBase(base, data); len(ps) > 0 {
		return nil, ps
	}
	parent, ps := r.resolveSource(base, depth+1, append(slices.Clone(chain), base))
	if len(ps) > 0 {
		return nil, ps
	}
	return mergeInto(parent, src, base.file)
}

// locateBase checks src's extends path and returns the base file it names.
func (r *extendsResolver) locateBase(src *source, depth int, chain []*source) (*source, *Problem) {
	fail := func(format string, args ...any) (*source, *Problem) {
		p := src.problem("extends", format, args...)
		return nil, &p
	}
	ext := src.rb.Extends
	slashed := filepath.ToSlash(ext)
	if filepath.IsAbs(ext) || strings.HasPrefix(slashed, "/") || filepath.VolumeName(ext) != "" {
		return fail("%q is absolute; extends is a path relative to this file's folder, such as base/standard.yaml", ext)
	}
	target := filepath.Join(filepath.Dir(src.path), filepath.FromSlash(slashed))
	rel, err := filepath.Rel(r.topDir, target)
	if err != nil || escapes(rel) {
		return fail("%q leaves the folder of %s; bases live in that folder or below it (base/standard.yaml)", ext, r.top.file)
	}
	real := realPath(target)
	if realRel, err := filepath.Rel(r.root, real); err == nil && escapes(realRel) {
		return fail("%q leads out of the folder of %s through a symbolic link; bases live in that folder or below it", ext, r.top.file)
	}
	names := make([]string, 0, len(chain)+1)
	for _, s := range chain {
		names = append(names, s.file)
	}
	file := filepath.ToSlash(rel)
	names = append(names, file)
	for _, s := range chain {
		if s.real == real {
			return fail("makes a cycle: %s", strings.Join(names, " → "))
		}
	}
	if depth+1 > maxExtendsDepth {
		return fail("makes a chain of more than %d bases: %s; merge some of them", maxExtendsDepth, strings.Join(names, " → "))
	}
	return &source{file: file, path: target, real: real}, nil
}

func escapes(rel string) bool {
	return rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel)
}

// baseSections are what a base declares; the rest of a runbook is not inherited.
const baseSections = "approvals, readiness, freezes, onFreeze, cab, changeRequest, rollbackAuthority and rollback"

// parseBase reads a base with Parse, leniently: a base has no stages and needs no name, and
// its approvals hold stages of the runbooks extending it (checked after the merge), so what
// Parse says of those is set aside. A base declares only standards. Problems are located in
// the base's file.
func parseBase(src *source, data []byte) []Problem {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return yamlProblems(src.file, err)
	}
	if root.Kind == 0 || len(root.Content) == 0 {
		return []Problem{{File: src.file, Msg: "the base is empty; a base declares standards: " + baseSections}}
	}
	src.root = &root
	rb, err := Parse(src.file, data)
	src.rb = rb
	var ps []Problem
	var inv *InvalidError
	switch {
	case errors.As(err, &inv):
		for _, p := range inv.Problems {
			if !baseMayOmit(rb, p.Path) {
				ps = append(ps, p)
			}
		}
	case err != nil:
		return []Problem{{File: src.file, Msg: err.Error()}}
	}
	add := func(path, format string, args ...any) {
		ps = append(ps, src.problem(path, format, args...))
	}
	if len(rb.Stages) > 0 {
		add("stages", "a base runbook declares standards, not stages; stages belong in the runbooks that extend it")
	}
	notInherited := []struct {
		path string
		set  bool
	}{
		{"tier", rb.Tier != 0},
		{"dataClassification", rb.DataClassification != ""},
		{"capabilities", len(rb.Capabilities) > 0},
		{"channel", rb.Channel != ""},
		{"scope", rb.Scope != nil},
		{"analyses", len(rb.Analyses) > 0},
		{"stabilization", !rb.Stabilization.IsZero()},
	}
	for _, f := range notInherited {
		if f.set {
			add(f.path, "%s is not inherited from a base; a base declares %s", f.path, baseSections)
		}
	}
	return ps
}

// baseMayOmit reports whether Parse's problem at path is one a base does not have: its name,
// its (missing) stages, the stage an approval names.
func baseMayOmit(rb Runbook, path string) bool {
	if path == "name" || path == "stages" || strings.HasPrefix(path, "stages[") || strings.HasPrefix(path, "stages.") {
		return true
	}
	for i, g := range rb.Approvals {
		if path == fmt.Sprintf("approvals[%d].before", i) && g.Before != "" {
			return true
		}
	}
	return false
}

// mergeInto merges parent (a resolved base, declared in baseFile) into child.
func mergeInto(parent *merged, child *source, baseFile string) (*merged, []Problem) {
	c := child.rb
	m := identity(child)
	var ps []Problem
	add := func(path, format string, args ...any) {
		ps = append(ps, child.problem(path, format, args...))
	}

	// Exceptions drop inherited items.
	removed := map[string]bool{}
	var applied []Exception
	for i, ex := range c.Exceptions {
		ep := fmt.Sprintf("exceptions[%d]", i)
		// Validate (run by Parse) has checked the form of remove, waiver and reason.
		section, name, _ := strings.Cut(ex.Remove, "/")
		if (section != "approvals" && section != "readiness") || name == "" || removed[ex.Remove] {
			continue
		}
		var declared []string
		if section == "approvals" {
			for _, g := range parent.rb.Approvals {
				declared = append(declared, g.Name)
			}
		} else if parent.rb.Readiness != nil {
			for _, g := range parent.rb.Readiness.Gates {
				declared = append(declared, g.Name)
			}
		}
		if !slices.Contains(declared, name) {
			what := map[string]string{"approvals": "approval gate", "readiness": "readiness gate"}[section]
			list := "none"
			if len(declared) > 0 {
				list = strings.Join(declared, ", ")
			}
			add(ep+".remove", "%s declares no %s named %q (%s: %s); only an inherited item can be removed", baseFile, what, name, section, list)
			continue
		}
		removed[ex.Remove] = true
		applied = append(applied, ex)
	}
	m.applied = append(slices.Clone(parent.applied), applied...)

	// Approvals: the base's first, then the runbook's own.
	inherited := map[string]origin{}
	m.rb.Approvals = nil
	m.approvals = nil
	for i, g := range parent.rb.Approvals {
		if removed["approvals/"+g.Name] {
			continue
		}
		inherited[g.Name] = parent.approvals[i]
		m.rb.Approvals = append(m.rb.Approvals, g)
		m.approvals = append(m.approvals, parent.approvals[i])
	}
	for i, g := range c.Approvals {
		if o, ok := inherited[g.Name]; ok {
			add(fmt.Sprintf("approvals[%d].name", i), "approvals/%s is mandatory from %s; it cannot be redefined; add an exception with a waiver to replace it", g.Name, o.src.file)
			continue
		}
		m.rb.Approvals = append(m.rb.Approvals, g)
		m.approvals = append(m.approvals, origin{child, fmt.Sprintf("approvals[%d]", i)})
	}

	// Readiness gates likewise; the risk model cannot be redefined.
	var pr, cr Readiness
	if parent.rb.Readiness != nil {
		pr = *parent.rb.Readiness
	}
	if c.Readiness != nil {
		cr = *c.Readiness
	}
	var rd Readiness
	inherited = map[string]origin{}
	m.gates = nil
	for i, g := range pr.Gates {
		if removed["readiness/"+g.Name] {
			continue
		}
		inherited[g.Name] = parent.gates[i]
		rd.Gates = append(rd.Gates, g)
		m.gates = append(m.gates, parent.gates[i])
	}
	for i, g := range cr.Gates {
		if o, ok := inherited[g.Name]; ok {
			add(fmt.Sprintf("readiness.gates[%d].name", i), "readiness/%s is mandatory from %s; it cannot be redefined; add an exception with a waiver to replace it", g.Name, o.src.file)
			continue
		}
		rd.Gates = append(rd.Gates, g)
		m.gates = append(m.gates, origin{child, fmt.Sprintf("readiness.gates[%d]", i)})
	}
	rd.Risk = cr.Risk
	if pr.Risk != nil {
		if cr.Risk != nil {
			add("readiness.risk", "the risk model is set by %s; it cannot be redefined", parent.from("readiness.risk", "readiness.risk").src.file)
		}
		rd.Risk = pr.Risk
		m.sections["readiness.risk"] = parent.from("readiness.risk", "readiness.risk")
	}
	m.rb.Readiness = nil
	if len(rd.Gates) > 0 || rd.Risk != nil {
		m.rb.Readiness = &rd
	}

	// Freezes and rollback authority: the union, the base's first.
	m.rb.Freezes, m.freezes = union(parent.rb.Freezes, parent.freezes, c.Freezes, m.freezes)
	m.rb.RollbackAuthority, m.rollback = union(parent.rb.RollbackAuthority, parent.rollback, c.RollbackAuthority, m.rollback)

	if c.OnFreeze == "" && parent.rb.OnFreeze != "" {
		m.rb.OnFreeze = parent.rb.OnFreeze
		m.sections["onFreeze"] = parent.from("onFreeze", "onFreeze")
	}

	// CAB, change request and rollback: the base's unless the runbook sets them, and then
	// the runbook may only tighten.
	switch {
	case parent.rb.CAB == nil:
	case c.CAB == nil:
		m.rb.CAB = parent.rb.CAB
		m.sections["cab"] = parent.from("cab", "cab")
	default:
		cab := *parent.rb.CAB
		cab.When = orConditions(parent.rb.CAB.When, c.CAB.When)
		if len(c.CAB.Roles) > 0 && !sameSet(c.CAB.Roles, parent.rb.CAB.Roles) {
			add("cab.roles", "the CAB's roles [%s] are set by %s; a runbook may widen when the CAB applies (its when is combined with the base's by ||), not change who approves: leave roles out or repeat the base's", strings.Join(parent.rb.CAB.Roles, ", "), parent.from("cab", "cab").src.file)
		}
		m.rb.CAB = &cab
	}
	switch {
	case parent.rb.ChangeRequest == nil:
	case c.ChangeRequest == nil:
		m.rb.ChangeRequest = parent.rb.ChangeRequest
		m.sections["changeRequest"] = parent.from("changeRequest", "changeRequest")
	default:
		cr := *parent.rb.ChangeRequest
		if c.ChangeRequest.Provider != "" && c.ChangeRequest.Provider != cr.Provider {
			add("changeRequest.provider", "the change request provider (%s) is set by %s: leave provider out or repeat the base's", cr.Provider, parent.from("changeRequest", "changeRequest").src.file)
		}
		if c.ChangeRequest.AssignmentGroup != "" {
			cr.AssignmentGroup = c.ChangeRequest.AssignmentGroup
		}
		if c.ChangeRequest.Template != "" {
			cr.Template = c.ChangeRequest.Template
		}
		cr.When = orConditions(parent.rb.ChangeRequest.When, c.ChangeRequest.When)
		m.rb.ChangeRequest = &cr
	}
	switch {
	case parent.rb.Rollback == nil:
	case c.Rollback == nil:
		m.rb.Rollback = parent.rb.Rollback
		m.sections["rollback"] = parent.from("rollback", "rollback")
	default:
		p, rc := *parent.rb.Rollback, *c.Rollback
		rb := p
		if rc.Scope != "" {
			rb.Scope = rc.Scope
		}
		if rc.Budget > 0 && (p.Budget <= 0 || rc.Budget < p.Budget) {
			rb.Budget = rc.Budget
		}
		rb.ForwardFix = p.ForwardFix && rc.ForwardFix
		if rc.CircuitBreaker != nil {
			rb.CircuitBreaker = rc.CircuitBreaker
		}
		m.rb.Rollback = &rb
	}
	if len(ps) > 0 {
		return nil, ps
	}
	return m, nil
}

// from is where a section of a resolved runbook is declared: its base, or the file itself.
func (m *merged) from(section, path string) origin {
	if o, ok := m.sections[section]; ok {
		return o
	}
	return origin{m.self, path}
}

func union(base []string, baseFrom []origin, own []string, ownFrom []origin) ([]string, []origin) {
	var out []string
	var from []origin
	for i, v := range base {
		if !slices.Contains(out, v) {
			out = append(out, v)
			from = append(from, baseFrom[i])
		}
	}
	for i, v := range own {
		if !slices.Contains(out, v) {
			out = append(out, v)
			from = append(from, ownFrom[i])
		}
	}
	return out, from
}

// orConditions applies when either condition holds; an empty condition always holds.
func orConditions(a, b string) string {
	if strings.TrimSpace(a) == "" || strings.TrimSpace(b) == "" {
		return ""
	}
	if a == b {
		return a
	}
	return "(" + a + ") || (" + b + ")"
}

func sameSet(a, b []string) bool {
	for _, v := range a {
		if !slices.Contains(b, v) {
			return false
		}
	}
	for _, v := range b {
		if !slices.Contains(a, v) {
			return false
		}
	}
	return true
}

// validateMerged checks the merged runbook as a whole and reports each problem in the file
// that declares what is at fault.
func (r *extendsResolver) validateMerged(m *merged) []Problem {
	var ps []Problem
	stages := make([]string, len(m.rb.Stages))
	for i, s := range m.rb.Stages {
		stages[i] = s.Name
	}
	missing := map[string]bool{}
	for i, g := range m.rb.Approvals {
		o := m.approvals[i]
		if o.src == r.top || g.Before == "" || slices.Contains(stages, g.Before) {
			continue
		}
		missing[fmt.Sprintf("approvals[%d].before", i)] = true
		ps = append(ps, r.top.problem("stages", "approvals/%s is mandatory from %s and holds stage %q, which this runbook does not have (stages: %s); name the stage it should hold %q, or drop the gate with an exception (remove: approvals/%s) backed by a waiver",
			g.Name, o.src.file, g.Before, strings.Join(stages, ", "), g.Before, g.Name))
	}
	for _, p := range append(m.rb.Validate(), m.rb.checkConditions()...) {
		if missing[p.Path] {
			continue
		}
		o := m.locate(p.Path)
		ps = append(ps, o.src.problem(o.path, "%s", p.Msg))
	}
	return ps
}

// locate maps a path in the merged runbook to the file and path that declare it.
func (m *merged) locate(path string) origin {
	indexed := []struct {
		prefix string
		from   []origin
	}{
		{"approvals[", m.approvals},
		{"readiness.gates[", m.gates},
		{"freezes[", m.freezes},
		{"rollbackAuthority[", m.rollback},
	}
	for _, x := range indexed {
		rest, ok := strings.CutPrefix(path, x.prefix)
		if !ok {
			continue
		}
		num, tail, ok := strings.Cut(rest, "]")
		i, err := strconv.Atoi(num)
		if !ok || err != nil || i < 0 || i >= len(x.from) {
			break
		}
		return origin{x.from[i].src, x.from[i].path + tail}
	}
	for section, o := range m.sections {
		if path == section || strings.HasPrefix(path, section+".") || strings.HasPrefix(path, section+"[") {
			return origin{o.src, o.path + strings.TrimPrefix(path, section)}
		}
	}
	return origin{m.self, path}
}
