package hardware

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/trainyard/trainyard/runbooks"
)

// PlanWaves splits devices into the runbook's waves, in device id order so that a retried
// plan is the same plan. A Count wave takes that many devices; a Percent wave takes that
// share of the whole fleet, rounded up, at least one; a Rest wave (the last) takes what is
// left. A wave is cut to the devices left, and a wave left with none is dropped, so a
// small lab can run a runbook written for a large fleet. It is an error for the fleet to
// be empty, or for devices to be left over when the waves do not end with Rest.
func PlanWaves(devices []Device, waves []runbooks.Wave) ([][]Device, error) {
	switch {
	case len(devices) == 0:
		return nil, errors.New("plan waves: the inventory lists no devices")
	case len(waves) == 0:
		return nil, errors.New("plan waves: the target has no waves")
	}
	sorted := slices.Clone(devices)
	slices.SortStableFunc(sorted, func(a, b Device) int { return strings.Compare(a.ID, b.ID) })
	for i := 1; i < len(sorted); i++ {
		if sorted[i].ID == sorted[i-1].ID {
			return nil, fmt.Errorf("plan waves: device %q is listed twice", sorted[i].ID)
		}
	}

	total, left := len(sorted), sorted
	var plan [][]Device
	for i, w := range waves {
		var n int
		switch {
		case w.Rest && w.Count == 0 && w.Percent == 0:
			if i != len(waves)-1 {
				return nil, fmt.Errorf("plan waves: wave %d takes the rest, so it must be the last", i+1)
			}
			n = len(left)
		case w.Count > 0 && w.Percent == 0 && !w.Rest:
			n = w.Count
		case w.Percent > 0 && w.Count == 0 && !w.Rest:
			if w.Percent > 100 {
				return nil, fmt.Errorf("plan waves: wave %d takes %d%%, more than the whole fleet", i+1, w.Percent)
			}
			n = max(1, (total*w.Percent+99)/100)
		default:
			return nil, fmt.Errorf("plan waves: wave %d must set one of count (at least 1), percent (1 to 100) or rest", i+1)
		}
		n = min(n, len(left))
		if n == 0 {
			continue
		}
		plan = append(plan, left[:n:n])
		left = left[n:]
	}
	if len(left) > 0 {
		ids := make([]string, 0, 3)
		for _, d := range left[:min(3, len(left))] {
			ids = append(ids, d.ID)
		}
		more := ""
		if len(left) > 3 {
			more = ", …"
		}
		return nil, fmt.Errorf("plan waves: the waves take %d of %d devices, leaving %s%s: end the waves with rest: true",
			total-len(left), total, strings.Join(ids, ", "), more)
	}
	return plan, nil
}
