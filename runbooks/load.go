package runbooks

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// Problem is one thing wrong with a runbook, located by line, column and field path so a
// person can go straight to it. Column is 0 when only the line is known (YAML syntax errors).
type Problem struct {
	File   string `json:"file,omitempty"`
	Line   int    `json:"line,omitempty"`
	Column int    `json:"column,omitempty"`
	Path   string `json:"path,omitempty"`
	Msg    string `json:"message"`
}

// String formats the problem as file:line:column: path: message, leaving out what is unknown.
func (p Problem) String() string {
	var b strings.Builder
	loc := p.File
	if p.Line > 0 {
		if loc != "" {
			loc += ":"
		}
		loc += strconv.Itoa(p.Line)
		if p.Column > 0 {
			loc += ":" + strconv.Itoa(p.Column)
		}
	}
	if loc != "" {
		b.WriteString(loc)
		b.WriteString(": ")
	}
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// InvalidError lists every problem found in a runbook, not only the first.
type InvalidError struct {
	Problems []Problem
}

func (e *InvalidError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Parse reads one runbook. file names it in error messages. Unknown fields are errors: a
// misspelt key silently ignored is how a gate goes missing in production.
//
// Parse reports every problem it can find in one pass: the YAML tree is first checked
// against the Go types (unknown fields, lists where a value belongs, bad durations), the
// values at fault are set aside so decoding goes on, and the decoded runbook is validated,
// except below the fields already reported.
func Parse(file string, data []byte) (Runbook, error) {
	var rb Runbook
	root, found := parseYAML(data)
	if root == nil {
		if len(found) == 0 {
			found = []Problem{{Msg: "the file is empty; a runbook needs at least a name and one stage"}}
		}
		return rb, newInvalid(file, found)
	}
	shape := checkShape(root)
	found = append(found, shape.problems...)
	if shape.fatal {
		return rb, newInvalid(file, found)
	}
	if err := root.Decode(&rb); err != nil {
		found = append(found, yamlProblems("", err)...)
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			// Decoding stopped part way: what was decoded cannot be judged.
			return rb, newInvalid(file, found)
		}
	}
	problems := append(rb.Validate(), rb.checkConditions()...)
	for _, p := range problems {
		if !shape.covers(p.Path) {
			found = append(found, p)
		}
	}
	if len(found) == 0 {
		return rb, nil
	}
	for i := range found {
		if found[i].Line == 0 && found[i].Path != "" {
			found[i].Line, found[i].Column = positionOf(root, found[i].Path)
		}
	}
	return rb, newInvalid(file, found)
}

// newInvalid names the file in every problem and puts them in file order, the order a
// person fixes them in.
func newInvalid(file string, ps []Problem) *InvalidError {
	for i := range ps {
		ps[i].File = file
	}
	sort.SliceStable(ps, func(i, j int) bool {
		if ps[i].Line != ps[j].Line {
			return ps[i].Line < ps[j].Line
		}
		return ps[i].Column < ps[j].Column
	})
	return &InvalidError{Problems: ps}
}

// parseYAML returns the top node of the file's one document, or nil when the file holds
// nothing (or cannot be read as YAML, with the problems saying why).
func parseYAML(data []byte) (*yaml.Node, []Problem) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, yamlProblems("", err)
	}
	root := documentContent(&doc)
	if root == nil || isNull(root) {
		return nil, nil
	}
	var found []Problem
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		found = append(found, yamlProblems("", err)...)
	default:
		if n := documentContent(&next); n != nil && !isNull(n) {
			found = append(found, Problem{Line: next.Line, Column: next.Column,
				Msg: "a runbook file holds one YAML document, and everything after this --- would be ignored: move the second runbook to its own file"})
		}
	}
	return root, found
}

func documentContent(doc *yaml.Node) *yaml.Node {
	if doc.Kind != yaml.DocumentNode {
		return doc
	}
	if len(doc.Content) == 0 {
		return nil
	}
	return doc.Content[0]
}

// isNull reports whether a node is null, as yaml.v3 decodes it: the field stays unset.
// (A value tagged !!null that is not null, such as "!!null foo", fails to decode.)
func isNull(n *yaml.Node) bool {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!null" {
		return false
	}
	var v any
	return n.Decode(&v) == nil
}

// resolveAlias returns the node an alias stands for.
func resolveAlias(n *yaml.Node) *yaml.Node {
	if n != nil && n.Kind == yaml.AliasNode && n.Alias != nil {
		return n.Alias
	}
	return n
}

// isMerge is yaml.v3's test for a "<<" merge key.
func isMerge(k *yaml.Node) bool {
	return k.Kind == yaml.ScalarNode && k.Value == "<<" && (k.Tag == "" || k.Tag == "!" || k.ShortTag() == "!!merge")
}

var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// yamlProblems turns yaml.v3's errors ("yaml: line 3: ..." or a TypeError with one line per
// field) into problems of file located by line (yaml.v3 gives no column), each with a fix.
func yamlProblems(file string, err error) []Problem {
	var msgs []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	out := make([]Problem, 0, len(msgs))
	for _, m := range msgs {
		m = strings.TrimPrefix(m, "yaml: ")
		p := Problem{File: file, Msg: m}
		if sub := yamlLine.FindStringSubmatch(m); sub != nil {
			p.Line, _ = strconv.Atoi(sub[1])
			p.Msg = sub[2]
		}
		p.Msg = strings.ReplaceAll(p.Msg, "runbooks.", "")
		p.Msg = p.Msg + ": " + yamlHint(p.Msg)
		out = append(out, p)
	}
	return out
}

// yamlHints says how to fix yaml.v3's syntax errors, by a fragment of their message.
var yamlHints = []struct{ fragment, hint string }{
	{"mapping values are not allowed", `quote a value that contains ": ", or indent this line like the fields around it`},
	{"cannot start any token", "indent with spaces, not tabs, and quote a value starting with @ or `"},
	{"tab character", "indent with spaces, not tabs"},
	{"did not find expected key", "indent this line like the fields around it, or quote the value above it"},
	{"did not find expected ',' or ']'", "close the [ list with ] on the same value"},
	{"did not find expected ',' or '}'", "close the { block with } on the same value"},
	{"did not find expected '-' indicator", `a list and fields are mixed at one indentation: indent the fields, or start each list item with "- "`},
	{"did not find expected node content", "write a value after the key or dash, or remove the dangling indicator"},
	{"could not find expected ':'", "add the colon after the key, or quote the value"},
	{"unexpected end of stream", "close the quote or bracket opened above"},
	{"unknown anchor", "define the anchor with &name before referring to it with *name"},
	{"UTF-8", "save the file as UTF-8 text"},
	{"control characters", "remove the control characters from the file"},
	{"Unicode character escape", `fix the \u escape in the double-quoted text`},
	{"unknown escape character", `in double quotes write a backslash as \\, or use single quotes`},
	{"excessive aliasing", "expand the aliases: anchors may be reused, not multiplied"},
	{"contains itself", "an anchor cannot refer to itself: copy the value instead"},
	{"map merge requires", "merge (<<) only anchored blocks of fields, such as <<: *defaults"},
}

func yamlHint(msg string) string {
	for _, h := range yamlHints {
		if strings.Contains(msg, h.fragment) {
			return h.hint
		}
	}
	return "check the indentation, colons and quotes here"
}

// positionOf finds the line and column of a field path such as
// "stages[1].targets[0].deploy": the key of a field, the start of a list item. It falls back
// to the nearest ancestor that exists, so a missing field is reported where it should be.
func positionOf(root *yaml.Node, path string) (line, column int) {
	if root = documentContent(root); root == nil {
		return 0, 0
	}
	n := resolveAlias(root)
	line, column = root.Line, root.Column
	for _, seg := range splitPath(path) {
		var at, next *yaml.Node
		switch {
		case seg.index >= 0 && n.Kind == yaml.SequenceNode && seg.index < len(n.Content):
			at, next = n.Content[seg.index], n.Content[seg.index]
		case seg.index < 0 && n.Kind == yaml.MappingNode:
			at, next = lookupKey(n, seg.key, 0)
		}
		if at == nil {
			return line, column
		}
		line, column = at.Line, at.Column
		n = resolveAlias(next)
	}
	return line, column
}

// lineOf is the line of positionOf.
func lineOf(root *yaml.Node, path string) int {
	line, _ := positionOf(root, path)
	return line
}

// lookupKey finds a key of a mapping, or of the mappings merged into it with <<.
func lookupKey(m *yaml.Node, key string, depth int) (k, v *yaml.Node) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key && !isMerge(m.Content[i]) {
			return m.Content[i], m.Content[i+1]
		}
	}
	if depth > 8 {
		return nil, nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if !isMerge(m.Content[i]) {
			continue
		}
		merged := []*yaml.Node{m.Content[i+1]}
		if merged[0].Kind == yaml.SequenceNode {
			merged = merged[0].Content
		}
		for _, mm := range merged {
			if mm = resolveAlias(mm); mm.Kind == yaml.MappingNode {
				if k, v := lookupKey(mm, key, depth+1); k != nil {
					return k, v
				}
			}
		}
	}
	return nil, nil
}

type pathSeg struct {
	key   string
	index int
}

func splitPath(path string) []pathSeg {
	var segs []pathSeg
	for _, part := range strings.Split(path, ".") {
		if part == "" {
			continue
		}
		key := part
		var idx []int
		for {
			open := strings.IndexByte(key, '[')
			if open < 0 {
				break
			}
			closeAt := strings.IndexByte(key[open:], ']')
			if closeAt < 0 {
				break
			}
			i, err := strconv.Atoi(key[open+1 : open+closeAt])
			if err != nil {
				break
			}
			idx = append(idx, i)
			key = key[:open] + key[open+closeAt+1:]
		}
		if key != "" {
			segs = append(segs, pathSeg{key: key, index: -1})
		}
		for _, i := range idx {
			segs = append(segs, pathSeg{index: i})
		}
	}
	return segs
}

// shapeCheck walks the YAML tree along the Go types before decoding. It reports what
// decoding would trip on (unknown fields, a list where a value belongs, a bad duration,
// a key set twice), each at its line and column, and replaces the value at fault with a
// zero value so that decoding goes on and the rest of the runbook is still checked.
type shapeCheck struct {
	problems []Problem
	// quiet holds the paths of values set aside, and of fields an unknown key most likely
	// meant to set: validation says nothing at or below them, having nothing to judge.
	quiet []string
	fatal bool
	state map[shapeKey]shapeState
}

type shapeKey struct {
	n *yaml.Node
	t reflect.Type
}

type shapeState int

const (
	shapeChecking shapeState = iota + 1
	shapeGood
	shapeBad
)

var (
	runbookType       = reflect.TypeFor[Runbook]()
	durationType      = reflect.TypeFor[Duration]()
	stabilizationType = reflect.TypeFor[Stabilization]()
)

func checkShape(root *yaml.Node) *shapeCheck {
	c := &shapeCheck{state: map[shapeKey]shapeState{}}
	if root.Kind != yaml.MappingNode {
		c.fatal = true
		c.report(root, "", "a runbook is a block of fields, not %s: start the file with name: and stages:", describe(root))
		return c
	}
	slot := root
	c.value(&slot, runbookType, "", root, false)
	return c
}

// covers reports whether path is at or below a value that was set aside.
func (c *shapeCheck) covers(path string) bool {
	for _, d := range c.quiet {
		if path == d || strings.HasPrefix(path, d+".") || strings.HasPrefix(path, d+"[") {
			return true
		}
	}
	return false
}

func (c *shapeCheck) report(at *yaml.Node, path, format string, args ...any) {
	c.problems = append(c.problems, Problem{Line: at.Line, Column: at.Column, Path: path, Msg: fmt.Sprintf(format, args...)})
}

// drop replaces the value in slot with one that decodes to the zero value of t: null for a
// field, a zero of the element type for a list item (yaml.v3 leaves out list items it
// cannot decode, null ones included, which would shift the index of every later item).
func (c *shapeCheck) drop(slot **yaml.Node, t reflect.Type, path string, item bool) {
	n := *slot
	*slot = zeroNode(t, item, n.Line, n.Column)
	c.quiet = append(c.quiet, path)
}

func zeroNode(t reflect.Type, item bool, line, column int) *yaml.Node {
	n := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: line, Column: column}
	if !item {
		return n
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == durationType:
		n.Tag, n.Value = "!!str", "0s"
	case t.Kind() == reflect.Struct || t.Kind() == reflect.Map:
		n.Kind, n.Tag = yaml.MappingNode, "!!map"
	case t.Kind() == reflect.Slice:
		n.Kind, n.Tag = yaml.SequenceNode, "!!seq"
	case t.Kind() == reflect.String:
		n.Tag = "!!str"
	case t.Kind() == reflect.Int:
		n.Tag, n.Value = "!!int", "0"
	case t.Kind() == reflect.Float64:
		n.Tag, n.Value = "!!float", "0"
	case t.Kind() == reflect.Bool:
		n.Tag, n.Value = "!!bool", "false"
	}
	return n
}

// value checks the node in slot against type t. Problems are reported at at: the key of
// the field, or the list item (item is true).
func (c *shapeCheck) value(slot **yaml.Node, t reflect.Type, path string, at *yaml.Node, item bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	n := *slot
	target := resolveAlias(n)
	if target == nil || isNull(target) {
		if item { // an empty item is kept, as a zero value validation then judges
			*slot = zeroNode(t, true, n.Line, n.Column)
		}
		return // null leaves a field unset
	}
	key := shapeKey{target, t}
	if t.Kind() == reflect.Interface {
		if c.state[key] == 0 {
			c.state[key] = shapeGood
			c.free(target, t, path)
		}
		return
	}
	switch c.state[key] {
	case shapeChecking:
		// The node contains itself as the same type. The types of a runbook are not
		// recursive, so only a merge can do that, and merge reports it.
		return
	case shapeBad:
		c.drop(slot, t, path, item) // reported where the anchor is
		return
	case shapeGood:
		return
	}
	c.state[key] = shapeChecking
	if c.shape(target, t, path, at) {
		c.state[key] = shapeGood
		return
	}
	c.state[key] = shapeBad
	c.drop(slot, t, path, item)
}

// shape checks a node (not an alias, not null) against t; false means it cannot be decoded
// into t and must be dropped.
func (c *shapeCheck) shape(n *yaml.Node, t reflect.Type, path string, at *yaml.Node) bool {
	if t == durationType || t == stabilizationType && n.Kind == yaml.ScalarNode {
		return c.leaf(n, durationType, path, at)
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			c.wrongKind(n, t, path, at)
			return false
		}
		c.mapping(n, t, path)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			c.wrongKind(n, t, path, at)
			return false
		}
		c.mapping(n, t, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			c.wrongKind(n, t, path, at)
			return false
		}
		for i := range n.Content {
			c.value(&n.Content[i], t.Elem(), fmt.Sprintf("%s[%d]", path, i), n.Content[i], true)
		}
	default:
		return c.leaf(n, t, path, at)
	}
	return true
}

// leaf checks a single value by decoding it as yaml.v3 will.
func (c *shapeCheck) leaf(n *yaml.Node, t reflect.Type, path string, at *yaml.Node) bool {
	if n.Kind != yaml.ScalarNode {
		c.wrongKind(n, t, path, at)
		return false
	}
	v := reflect.New(t)
	err := n.Decode(v.Interface())
	if err == nil && t.Kind() == reflect.Int && !wholeNumber(n) {
		err = errors.New("not a whole number")
	}
	if err == nil && t.Kind() == reflect.String && !utf8.ValidString(v.Elem().String()) {
		c.report(at, path, "the value is not UTF-8 text: write it as plain text")
		return false
	}
	if err == nil {
		return true
	}
	val := quoteValue(n.Value)
	if n.Style&yaml.TaggedStyle != 0 {
		plain := *n
		plain.Tag, plain.Style = "", n.Style&^yaml.TaggedStyle
		if plain.Decode(reflect.New(t).Interface()) == nil {
			c.report(at, path, "%s is tagged %s, which does not fit here: remove the tag", val, n.Tag)
			return false
		}
	}
	switch {
	case t == durationType:
		c.report(at, path, "%s is not a duration: write it like 30s, 5m or 2h", val)
	case t.Kind() == reflect.Int:
		c.report(at, path, "%s is not a whole number: write one such as 3", val)
	case t.Kind() == reflect.Float64:
		c.report(at, path, "%s is not a number: write one such as 99.9", val)
	case t.Kind() == reflect.Bool:
		c.report(at, path, "%s is not true or false: write true or false", val)
	default:
		c.report(at, path, "%s cannot be read as text: write it as plain text", val)
	}
	return false
}

// wholeNumber reports whether a scalar that yaml.v3 accepts for an int field is really one:
// yaml.v3 truncates 1.5 to 1 and turns .inf into a huge negative number.
func wholeNumber(n *yaml.Node) bool {
	var v any
	if n.Decode(&v) != nil {
		return false
	}
	f, ok := v.(float64)
	return !ok || f == math.Trunc(f) && f >= math.MinInt64 && f < math.MaxInt64
}

// mapping checks the keys of a block decoded into a struct or a map, and their values.
func (c *shapeCheck) mapping(n *yaml.Node, t reflect.Type, path string) {
	var fields map[string]reflect.Type
	var inline reflect.Type
	if t.Kind() == reflect.Struct {
		_, fields, inline = yamlFields(t)
	}
	var remove []int
	set := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if prev := sameKey(n, i); prev != nil {
			c.report(k, joinPath(path, k.Value), "%s is set twice (also at line %d, column %d): keep one", quoteValue(k.Value), prev.Line, prev.Column)
			remove = append(remove, i)
			continue
		}
		if isMerge(k) {
			if !c.merge(n, i, t, path) {
				remove = append(remove, i)
			}
			continue
		}
		name, ok := c.keyName(k, path)
		if !ok {
			remove = append(remove, i)
			continue
		}
		if prev, dup := set[name]; dup {
			c.report(k, joinPath(path, name), "%q is set twice (also at line %d, column %d): keep one", name, prev.Line, prev.Column)
			remove = append(remove, i)
			continue
		}
		set[name] = k
		if t.Kind() == reflect.Map {
			c.value(&n.Content[i+1], t.Elem(), joinPath(path, name), k, false)
			continue
		}
		ft, known := fields[name]
		switch {
		case known:
			c.value(&n.Content[i+1], ft, joinPath(path, name), k, false)
		case inline != nil: // unknown keys of the runbook land in Extensions; Validate judges them
			c.value(&n.Content[i+1], inline, joinPath(path, name), k, false)
		default:
			c.report(k, joinPath(path, name), "%s", unknownFieldMsg(name, t))
			if meant := closest(name, fieldNames(t)); meant != "" {
				c.quiet = append(c.quiet, joinPath(path, meant))
			}
		}
	}
	removePairs(n, remove)
}

// free checks a value decoded as it is (the value of an extension field): yaml.v3 still
// refuses a key set twice in any block.
func (c *shapeCheck) free(n *yaml.Node, t reflect.Type, path string) {
	switch n.Kind {
	case yaml.MappingNode:
		var remove []int
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if prev := sameKey(n, i); prev != nil {
				c.report(k, joinPath(path, k.Value), "%s is set twice (also at line %d, column %d): keep one", quoteValue(k.Value), prev.Line, prev.Column)
				remove = append(remove, i)
				continue
			}
			c.value(&n.Content[i+1], t, joinPath(path, k.Value), k, false)
		}
		removePairs(n, remove)
	case yaml.SequenceNode:
		for i := range n.Content {
			c.value(&n.Content[i], t, fmt.Sprintf("%s[%d]", path, i), n.Content[i], true)
		}
	}
}

// removePairs removes the key-value pairs whose keys are at the given indices, in order.
func removePairs(m *yaml.Node, keys []int) {
	for j := len(keys) - 1; j >= 0; j-- {
		i := keys[j]
		m.Content = append(m.Content[:i], m.Content[i+2:]...)
	}
}

// sameKey returns an earlier key of the mapping that yaml.v3 counts as the same as the key
// at index i.
func sameKey(m *yaml.Node, i int) *yaml.Node {
	k := m.Content[i]
	for j := 0; j < i; j += 2 {
		if p := m.Content[j]; p.Kind == k.Kind && p.Value == k.Value {
			return p
		}
	}
	return nil
}

// keyName decodes a key as yaml.v3 does; false when it is not a name.
func (c *shapeCheck) keyName(k *yaml.Node, path string) (string, bool) {
	r := resolveAlias(k)
	var name string
	if r.Kind != yaml.ScalarNode || isNull(r) || r.Decode(&name) != nil {
		c.report(k, path, "want a name before the colon, not %s: write name: value", describe(r))
		return "", false
	}
	if !utf8.ValidString(name) {
		c.report(k, path, "the key is not UTF-8 text: write it as plain text")
		return "", false
	}
	return name, true
}

// merge checks a "<<" merge key at index i of mapping m: its value must be a block of
// fields, or a list of them, each checked as t. False means the merge must go.
func (c *shapeCheck) merge(m *yaml.Node, i int, t reflect.Type, path string) bool {
	v := m.Content[i+1]
	slots := []**yaml.Node{&m.Content[i+1]}
	if v.Kind == yaml.SequenceNode {
		slots = slots[:0]
		for j := range v.Content {
			slots = append(slots, &v.Content[j])
		}
	}
	for _, s := range slots {
		r := *s
		if r.Kind == yaml.AliasNode {
			r = r.Alias
		} else if v.Kind != yaml.SequenceNode && r.Kind != yaml.MappingNode {
			r = nil
		}
		if r == nil || r.Kind != yaml.MappingNode {
			c.report(m.Content[i], path, "<< merges blocks of fields: give it an anchored block such as *defaults, or a list of them")
			return false
		}
		if c.state[shapeKey{r, t}] == shapeChecking {
			c.report(m.Content[i], path, "the anchor &%s is merged into itself: merge another block, or copy its fields", (*s).Value)
			return false
		}
	}
	for _, s := range slots {
		c.value(s, t, path, m.Content[i], false)
	}
	return true
}

func (c *shapeCheck) wrongKind(n *yaml.Node, t reflect.Type, path string, at *yaml.Node) {
	got := describe(n)
	switch {
	case t == durationType:
		c.report(at, path, "want a duration such as 30s or 2h, not %s: write one duration", got)
	case t == stabilizationType:
		c.report(at, path, "want a duration (30m) or a block of fields (%s), not %s: write one of them", strings.Join(fieldNames(t), ", "), got)
	case t.Kind() == reflect.Slice && n.Kind == yaml.ScalarNode && t.Elem().Kind() == reflect.String:
		c.report(at, path, "want a list, not %s: write it as [%s]", got, n.Value)
	case t.Kind() == reflect.Slice:
		c.report(at, path, `want a list, not %s: start each item on its own line with "- "`, got)
	case t.Kind() == reflect.Map:
		c.report(at, path, "want a block of name: value pairs, not %s: put them on indented lines below the key", got)
	case t.Kind() == reflect.Struct && n.Kind == yaml.SequenceNode:
		c.report(at, path, `want a block of fields (%s), not a list: remove the "- " in front of its fields`, strings.Join(fieldNames(t), ", "))
	case t.Kind() == reflect.Struct:
		c.report(at, path, "want a block of fields (%s), not %s: put them on indented lines below the key", strings.Join(fieldNames(t), ", "), got)
	default:
		c.report(at, path, `want a single value, not %s: write one value, quoted if it starts with [ or { or holds ": "`, got)
	}
}

// describe names what a node is, for messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a block of fields"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "*" + n.Value
	default:
		return quoteValue(n.Value)
	}
}

// quoteValue quotes a value for a message, shortened when long.
func quoteValue(v string) string {
	if r := []rune(v); len(r) > 40 {
		v = string(r[:37]) + "..."
	}
	return strconv.Quote(v)
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// LoadFile reads and validates one runbook file.
func LoadFile(path string) (Runbook, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Runbook{}, fmt.Errorf("read runbook: %w", err)
	}
	rb, err := Parse(filepath.Base(path), data)
	if err != nil {
		return rb, err
	}
	return resolveExtends(path, rb)
}

// Catalog is a folder of runbook files (*.yaml, *.yml, not subfolders), read afresh on each
// call. Servers use a Registry over it, which reads at start and on reload.
type Catalog struct {
	Dir string
}

// ErrNotFound is returned for a runbook name no file declares.
var ErrNotFound = errors.New("runbook not found")

// All loads every runbook in the folder. A broken file does not hide the others: it is
// reported in the returned error while the valid ones are returned.
func (c Catalog) All() ([]Runbook, error) {
	files, err := c.files()
	if err != nil {
		return nil, err
	}
	var out []Runbook
	var errs []error
	seen := map[string]string{}
	for _, f := range files {
		rb, err := LoadFile(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if prev, dup := seen[rb.Name]; dup {
			errs = append(errs, fmt.Errorf("%s: runbook %q is also declared in %s", filepath.Base(f), rb.Name, filepath.Base(prev)))
			continue
		}
		seen[rb.Name] = f
		out = append(out, rb)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, errors.Join(errs...)
}

// Get loads the runbook with the given name.
func (c Catalog) Get(name string) (Runbook, error) {
	all, err := c.All()
	for _, rb := range all {
		if rb.Name == name {
			return rb, nil
		}
	}
	if err != nil {
		return Runbook{}, fmt.Errorf("%w: %q (and some runbook files are invalid: %v)", ErrNotFound, name, err)
	}
	return Runbook{}, fmt.Errorf("%w: %q", ErrNotFound, name)
}

func (c Catalog) files() ([]string, error) {
	entries, err := os.ReadDir(c.Dir)
	if err != nil {
		return nil, fmt.Errorf("read runbooks folder %q: %w", c.Dir, err)
	}
	var files []string
	for _, e := range entries {
		ext := filepath.Ext(e.Name())
		if !e.IsDir() && (ext == ".yaml" || ext == ".yml") {
			files = append(files, filepath.Join(c.Dir, e.Name()))
		}
	}
	return files, nil
}
