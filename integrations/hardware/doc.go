// Package hardware rolls firmware out to a fleet of devices from a site worker inside the
// devices' network: it loads the fleet's inventory (a file or an HTTP endpoint), plans the
// runbook's waves over it (one device, then a percentage, then the rest), and runs each
// wave through command.Runner: the runbook's flash script, then its probe, per device, a
// few at a time, halting with *HaltError when more of a wave fails than the runbook allows.
//
// Fleet is a value built per rollout from the runbook's target; the command.Runner inside
// it is the dependency tests replace (command.Fake, or command.Shell against the device
// simulator in internal/devicesim). The package knows nothing of Temporal: the activity
// around Fleet heartbeats what Progress reports and, after a retry, passes it back to
// Resume so no device is flashed twice. It must not talk to devices itself: how a device
// is flashed or probed belongs to the runbook's scripts.
package hardware
