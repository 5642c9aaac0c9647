package probe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Statuspage's summary of a whole page (GET /api/v2/summary.json); status.json has the same
// status object and no components.
const summaryPath = "/api/v2/summary.json"

const (
	// maxStatusPageBytes bounds a Statuspage document; summaries of pages with hundreds of
	// components and open incidents stay well under it.
	maxStatusPageBytes = 4 << 20
	// statusPageTimeout bounds the whole request when StatusPage builds its own client.
	statusPageTimeout = 15 * time.Second
)

// ErrUnexpectedResponse: the status page answered 200 with something that is not a
// Statuspage document (an HTML page, a login wall, a body over the size bound).
var ErrUnexpectedResponse = errors.New("unexpected response from status page")

// ResponseError is a status page answering with a status other than 200.
type ResponseError struct {
	// URL is the document's URL without user info or query.
	URL        string
	StatusCode int
}

func (e *ResponseError) Error() string {
	return fmt.Sprintf("status page %s answered %d %s", e.URL, e.StatusCode, http.StatusText(e.StatusCode))
}

// Retryable reports whether the page may answer later: rate limiting and server errors.
func (e *ResponseError) Retryable() bool {
	return e.StatusCode == http.StatusTooManyRequests || e.StatusCode >= 500
}

// Status is a third party's state as its Statuspage tells it.
type Status struct {
	// Indicator is status.indicator: none, minor, major or critical (and maintenance, which
	// pages show during scheduled maintenance).
	Indicator string `json:"indicator"`
	// Description is status.description ("All Systems Operational", "Partial System Outage").
	Description string `json:"description"`
	// Operational is true only when the indicator is none and every component is operational.
	Operational bool `json:"operational"`
	// Degraded lists the components that are not operational as "name: status", in the
	// page's order; component groups are left out, their members speak for them.
	Degraded []string `json:"degraded"`
}

// statusDocument is the part of summary.json and status.json (Statuspage public API v2) read.
type statusDocument struct {
	Status *struct {
		Indicator   string `json:"indicator"`
		Description string `json:"description"`
	} `json:"status"`
	Components []struct {
		Name   string `json:"name"`
		Status string `json:"status"`
		Group  bool   `json:"group"`
	} `json:"components"`
}

// StatusPage reads an Atlassian Statuspage document: pageURL is the URL of its
// /api/v2/summary.json or /api/v2/status.json, or the page's root (https://status.example.com),
// which reads the summary. A nil client is replaced by one with a 15s timeout.
func StatusPage(ctx context.Context, client *http.Client, pageURL string) (Status, error) {
	u, err := url.Parse(pageURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return Status{}, fmt.Errorf("%w: status page URL must be an absolute http or https URL", ErrInvalidCheck)
	}
	if u.Path == "" || u.Path == "/" {
		u = u.JoinPath(summaryPath)
	}
	shown := display(u)
	if client == nil {
		client = newClient(statusPageTimeout)
		defer client.CloseIdleConnections()
	}

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return Status{}, fmt.Errorf("%w: status page %s: %v", ErrInvalidCheck, shown, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "trainyard-probe")
	resp, err := client.Do(req)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return Status{}, fmt.Errorf("read status page %s: %w", shown, ctxErr)
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return Status{}, fmt.Errorf("read status page %s: %w", shown, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Status{}, &ResponseError{URL: shown, StatusCode: resp.StatusCode}
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxStatusPageBytes+1))
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return Status{}, fmt.Errorf("read status page %s: %w", shown, ctxErr)
		}
		return Status{}, fmt.Errorf("read status page %s: %w", shown, err)
	}
	if len(data) > maxStatusPageBytes {
		return Status{}, fmt.Errorf("%w: %s is larger than %d bytes", ErrUnexpectedResponse, shown, maxStatusPageBytes)
	}
	var doc statusDocument
	if err := json.Unmarshal(data, &doc); err != nil || doc.Status == nil || doc.Status.Indicator == "" {
		return Status{}, fmt.Errorf("%w: %s answered %s without a status.indicator; give the page's /api/v2/summary.json URL",
			ErrUnexpectedResponse, shown, mediaType(resp))
	}

	st := Status{
		Indicator:   doc.Status.Indicator,
		Description: doc.Status.Description,
		Degraded:    []string{},
	}
	for _, c := range doc.Components {
		if c.Group || c.Status == "operational" {
			continue
		}
		// An unknown or missing status is not operational: the gate fails closed.
		status := c.Status
		if status == "" {
			status = "unknown"
		}
		st.Degraded = append(st.Degraded, strings.TrimSpace(c.Name)+": "+status)
	}
	st.Operational = st.Indicator == "none" && len(st.Degraded) == 0
	return st, nil
}

func mediaType(resp *http.Response) string {
	mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || mt == "" {
		return "a body of no known type"
	}
	return mt
}
