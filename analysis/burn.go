package analysis

import (
	"context"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/trainyard/trainyard/integrations/prometheus"
	"github.com/trainyard/trainyard/runbooks"
)

// DefaultBurnRates are the limits watched when an SLO lists none: the Google SRE workbook's
// page-worthy multi-window alerts, 2% of a 30-day budget in an hour and 5% in six hours.
var DefaultBurnRates = []runbooks.BurnRate{
	{Long: runbooks.Duration(time.Hour), Short: runbooks.Duration(5 * time.Minute), Factor: 14.4},
	{Long: runbooks.Duration(6 * time.Hour), Short: runbooks.Duration(30 * time.Minute), Factor: 6},
}

// BurnRates are the SLO's burn-rate limits, or DefaultBurnRates when it lists none.
func BurnRates(slo runbooks.SLO) []runbooks.BurnRate {
	if len(slo.BurnRates) > 0 {
		return slo.BurnRates
	}
	return DefaultBurnRates
}

// BurnRate is how many times faster than sustainable an error ratio spends the error budget
// of an objective in percent: 1 spends exactly the budget over the SLO's period. An
// objective of 100 has no budget (any error burns infinitely fast).
func BurnRate(errorRatio, objectivePercent float64) float64 {
	return errorRatio / (1 - objectivePercent/100)
}

// BurnQuery is the SLO's errorRatio measured over window: $window (or ${window}) replaced by
// the window or, in a query without the placeholder, the duration of every range selector
// replaced by it (see the package documentation).
func BurnQuery(slo runbooks.SLO, window time.Duration) string {
	w := PromDuration(window)
	q := slo.ErrorRatio
	if strings.Contains(q, "$window") || strings.Contains(q, "${window}") {
		return strings.NewReplacer("${window}", w, "$window", w).Replace(q)
	}
	return replaceRanges(q, w)
}

var rangeDuration = regexp.MustCompile(`^\s*([0-9]+(ms|[smhdwy]))+\s*$`)

// replaceRanges rewrites the range of every [range] or [range:resolution] outside string
// literals and comments.
func replaceRanges(q, w string) string {
	var b strings.Builder
	for i := 0; i < len(q); {
		switch c := q[i]; c {
		case '"', '\'', '`':
			end := closeQuote(q, i)
			b.WriteString(q[i:end])
			i = end
		case '#':
			end := strings.IndexByte(q[i:], '\n')
			if end < 0 {
				end = len(q) - i
			}
			b.WriteString(q[i : i+end])
			i += end
		case '[':
			end := strings.IndexByte(q[i:], ']')
			if end < 0 {
				b.WriteString(q[i:])
				return b.String()
			}
			inner := q[i+1 : i+end]
			rng, res, sub := strings.Cut(inner, ":")
			if rangeDuration.MatchString(rng) {
				inner = w
				if sub {
					inner += ":" + res
				}
			}
			b.WriteString("[" + inner + "]")
			i += end + 1
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String()
}

// closeQuote is the index after the string literal starting at q[i].
func closeQuote(q string, i int) int {
	quote := q[i]
	for j := i + 1; j < len(q); j++ {
		switch {
		case q[j] == '\\' && quote != '`':
			j++
		case q[j] == quote:
			return j + 1
		}
	}
	return len(q)
}

// PromDuration writes d as a PromQL duration in one unit ("90m", "6h", "1500ms").
func PromDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "0s"
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	case d%time.Second == 0:
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	return strconv.FormatInt(max(d.Milliseconds(), 1), 10) + "ms"
}

// BurnResult is one burn-rate limit checked.
type BurnResult struct {
	Rule runbooks.BurnRate `json:"rule"`
	// Long and Short are the burn rates over the two windows (NaN when a window had no
	// traffic).
	Long  float64 `json:"long"`
	Short float64 `json:"short"`
	// Breached: both windows burn faster than Rule.Factor.
	Breached bool `json:"breached"`
	// Outcome is failed when breached, successful when not, inconclusive without data in a
	// window, error when a query failed.
	Outcome Outcome   `json:"outcome"`
	Message string    `json:"message"`
	At      time.Time `json:"at"`
}

// CheckBurn measures the SLO's error ratio over br's long and short windows at at and
// reports whether both burn the budget faster than br.Factor: the long window shows the
// budget is really being spent, the short one that it still is (so the check heals soon
// after the errors stop).
func CheckBurn(ctx context.Context, q prometheus.Querier, slo runbooks.SLO, br runbooks.BurnRate, at time.Time) BurnResult {
	r := BurnResult{Rule: br, At: at, Long: math.NaN(), Short: math.NaN()}
	limit := fmt.Sprintf("%gx over %s and %s", br.Factor, PromDuration(br.Long.D()), PromDuration(br.Short.D()))
	long, lerr := q.Query(ctx, BurnQuery(slo, br.Long.D()), at)
	short, serr := q.Query(ctx, BurnQuery(slo, br.Short.D()), at)
	if lerr == nil {
		r.Long = BurnRate(long.Value, slo.Objective)
		if !long.At.IsZero() {
			r.At = long.At
		}
	}
	if serr == nil {
		r.Short = BurnRate(short.Value, slo.Objective)
	}
	for _, e := range []struct {
		window runbooks.Duration
		err    error
	}{{br.Long, lerr}, {br.Short, serr}} {
		if e.err != nil && !errors.Is(e.err, prometheus.ErrNoData) {
			r.Outcome, r.Message = OutcomeError, fmt.Sprintf("error ratio over %s: %v", PromDuration(e.window.D()), e.err)
			return r
		}
	}
	if lerr != nil || serr != nil || math.IsNaN(r.Long) || math.IsNaN(r.Short) {
		r.Outcome = OutcomeInconclusive
		r.Message = fmt.Sprintf("no error ratio over %s or %s (no data or no traffic); burn rates %s and %s against %s",
			PromDuration(br.Long.D()), PromDuration(br.Short.D()), fmtRate(r.Long), fmtRate(r.Short), limit)
		return r
	}
	r.Breached = faster(r.Long, br.Factor) && faster(r.Short, br.Factor)
	if r.Breached {
		r.Outcome = OutcomeFailed
		r.Message = fmt.Sprintf("error budget of the %g%% objective burning %s over %s and %s over %s, above %s (error ratio %.4g)",
			slo.Objective, fmtRate(r.Long), PromDuration(br.Long.D()), fmtRate(r.Short), PromDuration(br.Short.D()), limit, short.Value)
	} else {
		r.Outcome = OutcomeSuccessful
		r.Message = fmt.Sprintf("error budget of the %g%% objective burning %s over %s and %s over %s, within %s",
			slo.Objective, fmtRate(r.Long), PromDuration(br.Long.D()), fmtRate(r.Short), PromDuration(br.Short.D()), limit)
	}
	return r
}

// faster reports whether rate exceeds factor by more than floating-point noise: 1 - 99.9/100
// is not exactly 0.001, and an error ratio of exactly 1.44% at 99.9% is 14.4x, not above it.
func faster(rate, factor float64) bool { return rate > factor*(1+1e-9) }

func fmtRate(f float64) string {
	if math.IsNaN(f) {
		return "unknown"
	}
	return strconv.FormatFloat(f, 'g', 3, 64) + "x"
}
