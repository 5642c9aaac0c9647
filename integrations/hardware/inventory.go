package hardware

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Device is one device of a fleet, as its inventory lists it.
type Device struct {
	// ID names the device; unique in the inventory. Flash and probe scripts get it as
	// DEVICE_ID.
	ID string `json:"id" yaml:"id"`
	// Address is how the scripts reach the device (DEVICE_ADDRESS): host:port, a hostname,
	// a serial port; only the scripts interpret it.
	Address string            `json:"address" yaml:"address"`
	Labels  map[string]string `json:"labels,omitempty" yaml:"labels,omitempty"`
}

// MaxInventoryBytes bounds an inventory file or response.
const MaxInventoryBytes = 8 << 20

// defaultHTTP fetches inventories when LoadInventory is given no client.
var defaultHTTP = &http.Client{Timeout: 30 * time.Second}

// LoadInventory reads the devices listed at source: an http(s) URL answering JSON (or
// YAML, by its Content-Type), or a file path, read as JSON when it ends in .json, as YAML
// when it ends in .yaml or .yml, and otherwise as JSON when it starts with '[' or '{'.
// Either holds a list of {id, address, labels}. Errors name the source and, where
// possible, the line. client fetches URLs; a client with a 30s timeout when nil.
func LoadInventory(ctx context.Context, source string, client *http.Client) ([]Device, error) {
	if strings.TrimSpace(source) == "" {
		return nil, errors.New("device inventory: no inventory is configured")
	}
	var (
		data   []byte
		format string
		name   = source
		err    error
	)
	if u, perr := url.Parse(source); perr == nil && (u.Scheme == "http" || u.Scheme == "https") {
		// Only scheme, host and path go into errors: the query or user info may hold a token.
		name = u.Scheme + "://" + u.Host + u.EscapedPath()
		data, format, err = fetch(ctx, source, client)
	} else {
		data, err = readFile(ctx, source)
		switch strings.ToLower(filepath.Ext(source)) {
		case ".json":
			format = "json"
		case ".yaml", ".yml":
			format = "yaml"
		}
	}
	if err != nil {
		return nil, fmt.Errorf("device inventory %s: %w", name, err)
	}
	if format == "" {
		format = "yaml"
		if t := bytes.TrimLeft(data, " \t\r\n\ufeff"); len(t) > 0 && (t[0] == '[' || t[0] == '{') {
			format = "json"
		}
	}
	var items []item
	if format == "json" {
		items, err = parseJSON(data)
	} else {
		items, err = parseYAML(data)
	}
	if err == nil {
		err = check(items)
	}
	if err != nil {
		return nil, fmt.Errorf("device inventory %s: %w", name, err)
	}
	devices := make([]Device, len(items))
	for i, it := range items {
		devices[i] = it.Device
	}
	return devices, nil
}

func readFile(ctx context.Context, path string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, MaxInventoryBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxInventoryBytes {
		return nil, fmt.Errorf("the file is larger than %d bytes", MaxInventoryBytes)
	}
	return data, nil
}

func fetch(ctx context.Context, source string, client *http.Client) ([]byte, string, error) {
	if client == nil {
		client = defaultHTTP
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, source, nil)
	if err != nil {
		return nil, "", fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Accept", "application/json, application/yaml;q=0.9")
	resp, err := client.Do(req)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, "", ctxErr
		}
		// url.Error repeats the whole URL, query included; keep only the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, "", err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxInventoryBytes+1))
	if err != nil {
		return nil, "", fmt.Errorf("read response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, "", fmt.Errorf("GET answered %s", resp.Status)
	}
	if len(data) > MaxInventoryBytes {
		return nil, "", fmt.Errorf("the response is larger than %d bytes", MaxInventoryBytes)
	}
	format := "json"
	if strings.Contains(resp.Header.Get("Content-Type"), "yaml") {
		format = "yaml"
	}
	return data, format, nil
}

// item is a device and the line it starts on.
type item struct {
	Device
	line int
}

func parseJSON(data []byte) ([]item, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	tok, err := dec.Token()
	if err != nil {
		return nil, jsonError(data, err, 0)
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return nil, fmt.Errorf("line 1: want a JSON list of devices ([{\"id\": ..., \"address\": ...}])")
	}
	var items []item
	for dec.More() {
		start := lineAt(data, dec.InputOffset())
		var d Device
		if err := dec.Decode(&d); err != nil {
			return nil, jsonError(data, err, start)
		}
		items = append(items, item{Device: d, line: start})
	}
	if _, err := dec.Token(); err != nil {
		return nil, jsonError(data, err, 0)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("line %d: unexpected data after the list of devices", lineAt(data, dec.InputOffset()))
	}
	return items, nil
}

// jsonError says on which line a JSON error is: at the error's offset when it has one,
// else at line (the device being read), else nowhere.
func jsonError(data []byte, err error, line int) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		line = lineAt(data, se.Offset)
	case errors.As(err, &te):
		line = lineAt(data, te.Offset)
		if te.Field != "" {
			return fmt.Errorf("line %d: %s must be %s, not a JSON %s", line, te.Field, kind(te.Type.String()), te.Value)
		}
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("the JSON ends before the list of devices does")
	}
	msg := strings.TrimPrefix(err.Error(), "json: ")
	if line > 0 {
		return fmt.Errorf("line %d: %s", line, msg)
	}
	return errors.New(msg)
}

func kind(goType string) string {
	if strings.HasPrefix(goType, "map[") {
		return "an object of strings"
	}
	return "a " + goType
}

// lineAt is the line of the first byte at or after off that is not a separator.
func lineAt(data []byte, off int64) int {
	i := int(min(off, int64(len(data))))
	for i < len(data) && strings.IndexByte(" \t\r\n,", data[i]) >= 0 {
		i++
	}
	return bytes.Count(data[:min(i, len(data))], []byte("\n")) + 1
}

func parseYAML(data []byte) ([]item, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, errors.New(strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("line %d: want a list of devices (- id: ...\\n  address: ...)", root.Line)
	}
	items := make([]item, 0, len(root.Content))
	for _, n := range root.Content {
		if n.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("line %d: a device is a mapping with id, address and labels", n.Line)
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if k := n.Content[i]; k.Value != "id" && k.Value != "address" && k.Value != "labels" {
				return nil, fmt.Errorf("line %d: unknown field %q (a device has id, address and labels)", k.Line, k.Value)
			}
		}
		var d Device
		if err := n.Decode(&d); err != nil {
			return nil, errors.New(strings.TrimPrefix(err.Error(), "yaml: unmarshal errors:\n  "))
		}
		items = append(items, item{Device: d, line: n.Line})
	}
	return items, nil
}

func check(items []item) error {
	if len(items) == 0 {
		return errors.New("it lists no devices")
	}
	seen := map[string]int{}
	for _, it := range items {
		switch {
		case strings.TrimSpace(it.ID) == "":
			return fmt.Errorf("line %d: a device has no id", it.line)
		case strings.TrimSpace(it.Address) == "":
			return fmt.Errorf("line %d: device %q has no address", it.line, it.ID)
		}
		if first, dup := seen[it.ID]; dup {
			return fmt.Errorf("line %d: device %q is listed twice (first on line %d)", it.line, it.ID, first)
		}
		seen[it.ID] = it.line
	}
	return nil
}
