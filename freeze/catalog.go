package freeze

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Catalog is the calendars defined by files: the reviewed source. LoadCatalog reads one
// folder once (one calendar per *.yaml or *.yml file directly in it; subfolders such as
// examples/ are not read); the catalog never changes afterwards and is safe for concurrent
// use. A nil *Catalog is an empty one.
type Catalog struct {
	dir       string
	calendars map[string]FileCalendar
	// broken maps a file's base name (and its calendar's name, when it could be read) to
	// why the file was not loaded, so a lookup of that name can say so.
	broken map[string]error
	// problems are the load errors, one per broken or conflicting file.
	problems []error
}

// FileCalendar is a calendar and the file that defines it.
type FileCalendar struct {
	Calendar Calendar
	Schedule *Schedule
	File     string
}

// LoadCatalog reads the calendar files in dir. A folder that does not exist is an empty
// catalog. A broken file does not hide the others: the catalog holds every valid calendar,
// and the error lists each broken file with its problems. A name two files define is
// offered by neither.
func LoadCatalog(dir string) (*Catalog, error) {
	c := &Catalog{dir: dir, calendars: map[string]FileCalendar{}, broken: map[string]error{}}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, fmt.Errorf("read calendars folder %q: %w", dir, err)
	}
	var errs []error
	twice := map[string]bool{}
	for _, e := range entries {
		ext := filepath.Ext(e.Name())
		if e.IsDir() || (ext != ".yaml" && ext != ".yml") {
			continue
		}
		file := filepath.Join(dir, e.Name())
		base := strings.TrimSuffix(e.Name(), ext)
		data, err := os.ReadFile(file)
		if err != nil {
			err = fmt.Errorf("read calendar file: %w", err)
			c.broken[base] = err
			errs = append(errs, err)
			continue
		}
		cal, err := ParseCalendar(file, data)
		if err != nil {
			c.broken[base] = err
			if cal.Name != "" {
				c.broken[cal.Name] = err
			}
			errs = append(errs, err)
			continue
		}
		if prev, dup := c.calendars[cal.Name]; dup {
			err := fmt.Errorf("%s: calendar %q is also defined in %s; rename or remove one of them", file, cal.Name, prev.File)
			c.broken[cal.Name] = err
			twice[cal.Name] = true
			errs = append(errs, err)
			continue
		}
		sched, _ := cal.Compile() // ParseCalendar validated it
		c.calendars[cal.Name] = FileCalendar{Calendar: cal, Schedule: sched, File: file}
	}
	// A name that a broken or second file also claims is offered by none of them: no file
	// can be trusted to be the one meant, and a runbook naming it is better stopped than
	// evaluated against the wrong windows.
	for name, fc := range c.calendars {
		if why := c.broken[name]; why != nil {
			delete(c.calendars, name)
			if !twice[name] {
				errs = append(errs, fmt.Errorf("%s: calendar %q is not offered: a broken file also claims the name (%w)", fc.File, name, why))
			}
		}
	}
	c.problems = errs
	return c, errors.Join(errs...)
}

// ParseCalendar reads one calendar file: strict YAML (an unknown key is an error, as a
// misspelt scope silently ignored would freeze the wrong releases), then Validate. A file
// without a name takes its base name. The error lists every problem, each naming file.
func ParseCalendar(file string, data []byte) (Calendar, error) {
	var cal Calendar
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cal); err != nil {
		return cal, &InvalidError{Problems: []Problem{{File: file, Msg: "not a calendar: " + strings.TrimPrefix(err.Error(), "yaml: ")}}}
	}
	if cal.Name == "" {
		base := filepath.Base(file)
		cal.Name = strings.TrimSuffix(base, filepath.Ext(base))
	}
	if err := cal.Validate(); err != nil {
		var inv *InvalidError
		if errors.As(err, &inv) {
			for i := range inv.Problems {
				inv.Problems[i].File = file
			}
		}
		return cal, err
	}
	return cal, nil
}

// Dir is the folder the catalog was read from.
func (c *Catalog) Dir() string {
	if c == nil {
		return ""
	}
	return c.dir
}

// Get returns the calendar the files define under name.
func (c *Catalog) Get(name string) (FileCalendar, bool) {
	if c == nil {
		return FileCalendar{}, false
	}
	fc, ok := c.calendars[name]
	return fc, ok
}

// Broken says why the file for name (by calendar name or file base name) was not loaded;
// nil when no broken file has that name.
func (c *Catalog) Broken(name string) error {
	if c == nil {
		return nil
	}
	return c.broken[name]
}

// Problems lists why files were not loaded, one entry per broken or conflicting file, so
// they can be shown rather than hidden.
func (c *Catalog) Problems() []string {
	if c == nil {
		return nil
	}
	out := make([]string, len(c.problems))
	for i, err := range c.problems {
		out[i] = err.Error()
	}
	sort.Strings(out)
	return out
}

// All returns the file calendars sorted by name.
func (c *Catalog) All() []FileCalendar {
	if c == nil {
		return nil
	}
	out := make([]FileCalendar, 0, len(c.calendars))
	for _, fc := range c.calendars {
		out = append(out, fc)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Calendar.Name < out[j].Calendar.Name })
	return out
}
