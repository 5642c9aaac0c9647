package runbooks

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"gopkg.in/yaml.v3"
)

// Problem is one thing wrong with a runbook, located by line and by field path so a person
// can go straight to it.
type Problem struct {
	File string `json:"file,omitempty"`
	Line int    `json:"line,omitempty"`
	Path string `json:"path,omitempty"`
	Msg  string `json:"message"`
}

func (p Problem) String() string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File)
		b.WriteString(":")
	}
	if p.Line > 0 {
		b.WriteString(strconv.Itoa(p.Line))
		b.WriteString(": ")
	} else if p.File != "" {
		b.WriteString(" ")
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
func Parse(file string, data []byte) (Runbook, error) {
	var rb Runbook
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return rb, &InvalidError{Problems: yamlProblems(file, err)}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&rb); err != nil {
		if errors.Is(err, io.EOF) {
			return rb, &InvalidError{Problems: []Problem{{File: file, Msg: "the file is empty; a runbook needs at least a name and one stage"}}}
		}
		return rb, &InvalidError{Problems: yamlProblems(file, err)}
	}
	problems := append(rb.Validate(), rb.checkConditions()...)
	if len(problems) == 0 {
		return rb, nil
	}
	for i := range problems {
		problems[i].File = file
		problems[i].Line = lineOf(&root, problems[i].Path)
	}
	// In file order, the order a person fixes them in.
	sort.SliceStable(problems, func(i, j int) bool { return problems[i].Line < problems[j].Line })
	return rb, &InvalidError{Problems: problems}
}

var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// yamlProblems turns yaml.v3's errors ("yaml: line 3: ..." or a TypeError with one line per
// field) into located problems.
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
		p := Problem{File: file, Msg: m}
		if sub := yamlLine.FindStringSubmatch(m); sub != nil {
			p.Line, _ = strconv.Atoi(sub[1])
			p.Msg = sub[2]
		}
		p.Msg = strings.Replace(p.Msg, "in type runbooks.", "in ", 1)
		out = append(out, p)
	}
	return out
}

// lineOf finds the line of a field path such as "stages[1].targets[0].deploy", falling back
// to the nearest ancestor that exists (a missing field is reported where it should be).
func lineOf(root *yaml.Node, path string) int {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := n.Line
	for _, seg := range splitPath(path) {
		next := (*yaml.Node)(nil)
		switch {
		case seg.index >= 0 && n.Kind == yaml.SequenceNode && seg.index < len(n.Content):
			next = n.Content[seg.index]
		case seg.index < 0 && n.Kind == yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == seg.key {
					next = n.Content[i+1]
					if next.Kind == yaml.ScalarNode {
						next = n.Content[i]
					}
					break
				}
			}
		}
		if next == nil {
			return line
		}
		n, line = next, next.Line
	}
	return line
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

// Catalog is a folder of runbook files (*.yaml, *.yml), looked at afresh on each lookup so
// an edited runbook applies to the next release without a restart. A catalog made by
// NewCatalog parses a file again only when its size or modification time changed.
type Catalog struct {
	Dir   string
	cache *parseCache
}

// NewCatalog returns a catalog of dir that caches parsed files.
func NewCatalog(dir string) Catalog {
	return Catalog{Dir: dir, cache: &parseCache{entries: map[string]cacheEntry{}}}
}

type parseCache struct {
	mu      sync.Mutex
	entries map[string]cacheEntry
}

type cacheEntry struct {
	modTime time.Time
	size    int64
	rb      Runbook
	err     error
}

func (c Catalog) load(path string) (Runbook, error) {
	if c.cache == nil {
		return LoadFile(path)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return Runbook{}, fmt.Errorf("read runbook: %w", err)
	}
	c.cache.mu.Lock()
	e, ok := c.cache.entries[path]
	c.cache.mu.Unlock()
	if ok && e.modTime.Equal(fi.ModTime()) && e.size == fi.Size() {
		return e.rb, e.err
	}
	rb, err := LoadFile(path)
	c.cache.mu.Lock()
	c.cache.entries[path] = cacheEntry{modTime: fi.ModTime(), size: fi.Size(), rb: rb, err: err}
	c.cache.mu.Unlock()
	return rb, err
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
		rb, err := c.load(f)
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
