package promserver

import (
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// TestServiceRate is how many synthetic requests a second a TestService accounts.
const TestServiceRate = 100

// Default shape of a TestService's synthetic traffic.
const (
	defaultLatency = 10 * time.Millisecond
	accountEvery   = 50 * time.Millisecond
)

// TestService is an HTTP service on 127.0.0.1 serving /metrics in Prometheus' text format:
//
//	testsvc_requests_total{code="200"|"500"}   counter of requests by status
//	testsvc_request_duration_seconds           histogram of their latency
//
// It serves no real traffic: it accounts TestServiceRate requests a second into those metrics
// itself, with the error ratio and latency the test sets, so that
//
//	sum(rate(testsvc_requests_total{code="500"}[5s])) / sum(rate(testsvc_requests_total[5s]))
//
// follows SetErrorRatio within a few scrapes. The errors are spread evenly (exactly the ratio
// over any run of requests, no randomness), and both codes exist from the start, so the
// ratio is 0, not no data, while nothing fails.
type TestService struct {
	ln  net.Listener
	srv *http.Server
	reg *prometheus.Registry

	requests *prometheus.CounterVec
	duration prometheus.Histogram

	mu         sync.Mutex
	errorRatio float64
	latency    time.Duration
	errDebt    float64 // fraction of an error owed, carried between requests
	started    time.Time
	accounted  int64

	stop chan struct{}
	done chan struct{}
}

// NewTestService starts a TestService with no errors and 10ms latency. Like
// httptest.NewServer, it panics when it cannot listen on 127.0.0.1.
func NewTestService() *TestService {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(fmt.Sprintf("promserver: test service cannot listen on 127.0.0.1: %v", err))
	}
	reg := prometheus.NewRegistry()
	s := &TestService{
		ln:  ln,
		reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "testsvc_requests_total",
			Help: "Synthetic requests served, by HTTP status code.",
		}, []string{"code"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "testsvc_request_duration_seconds",
			Help:    "Latency of the synthetic requests.",
			Buckets: prometheus.DefBuckets,
		}),
		latency: defaultLatency,
		started: time.Now(),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	reg.MustRegister(s.requests, s.duration)
	s.requests.WithLabelValues("200")
	s.requests.WithLabelValues("500")

	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second}
	// Serve ends with ErrServerClosed on Close; a scrape that then fails shows in Prometheus'
	// up metric, which is where a test looks.
	go func() { _ = s.srv.Serve(ln) }()
	go s.generate()
	return s
}

// Addr is the service's host:port, a scrape target.
func (s *TestService) Addr() string { return s.ln.Addr().String() }

// SetErrorRatio makes that share (0 to 1) of the following requests answer 500.
func (s *TestService) SetErrorRatio(r float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errorRatio = min(max(r, 0), 1)
	s.errDebt = 0
}

// SetLatency sets how long the following requests take.
func (s *TestService) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = max(d, 0)
}

// Close stops the traffic and the HTTP server.
func (s *TestService) Close() {
	select {
	case <-s.stop:
		return
	default:
	}
	close(s.stop)
	<-s.done
	_ = s.srv.Close()
}

// generate accounts the requests owed since the start, so the rate holds whatever the
// ticker's jitter.
func (s *TestService) generate() {
	defer close(s.done)
	tick := time.NewTicker(accountEvery)
	defer tick.Stop()
	for {
		select {
		case <-s.stop:
			return
		case now := <-tick.C:
			s.mu.Lock()
			owed := int64(now.Sub(s.started).Seconds()*TestServiceRate) - s.accounted
			s.account(owed)
			s.mu.Unlock()
		}
	}
}

// account records n requests at the current ratio and latency. s.mu must be held.
func (s *TestService) account(n int64) {
	for range n {
		code := "200"
		s.errDebt += s.errorRatio
		// The epsilon keeps a ratio such as 0.2 from losing an error to rounding.
		if s.errDebt >= 1-1e-9 {
			s.errDebt--
			code = "500"
		}
		s.requests.WithLabelValues(code).Inc()
		s.duration.Observe(s.latency.Seconds())
	}
	s.accounted += n
}
