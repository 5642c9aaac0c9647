package workflows

import "fmt"

// needsRollback reports whether the progress says the target changed something a rollback
// must undo: it deployed, or carries an Undo (a canary at its first weight, a blue-green
// target's idle side, a hardware wave, or a failure that changed something on the way). A
// release rolls back every target that ever reported so, once each.
func (p TargetProgress) needsRollback() bool {
	return p.State == StateDeployed || p.Undo != nil
}

// applyRollout copies the rollout fields of a progress onto the target's status: step,
// weight, devices, side, warning, and the latest Undo (which a rollback passes back).
func (t *TargetStatus) applyRollout(p TargetProgress) {
	t.Step, t.Steps, t.Weight = p.Step, p.Steps, p.Weight
	t.DevicesDone, t.DevicesFailed, t.DevicesTotal = p.DevicesDone, p.DevicesFailed, p.DevicesTotal
	t.Side, t.Warning = p.Side, p.Warning
	if p.Undo != nil {
		t.Undo = p.Undo
	}
}

// progressEvent is the timeline line of a progress, or "" when it adds nothing worth a line
// (the release logs deploying, deployed, failed and cancelled itself).
func progressEvent(p TargetProgress, before TargetStatus) string {
	switch {
	case p.State != StateRunning:
		return ""
	case p.Warning != "" && p.Warning != before.Warning:
		return fmt.Sprintf("%s: %s", p.Target, p.Warning)
	case p.Steps > 0 && (p.Step != before.Step || p.Weight != before.Weight) && p.Undo != nil:
		return fmt.Sprintf("%s at canary step %d of %d, weight %d%%", p.Target, p.Step, p.Steps, p.Weight)
	case p.DevicesTotal > 0 && p.DevicesDone != before.DevicesDone:
		return fmt.Sprintf("%s: %d of %d devices flashed (%d failed)", p.Target, p.DevicesDone, p.DevicesTotal, p.DevicesFailed)
	case p.Side != "" && before.Side == "":
		return fmt.Sprintf("%s: %s side deployed, traffic not switched yet", p.Target, p.Side)
	}
	return ""
}
