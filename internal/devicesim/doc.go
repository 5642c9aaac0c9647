// Package devicesim simulates a fleet of hardware devices for tests and demos: each device
// is a small HTTP server on loopback holding a firmware version that a flash command really
// changes.
//
// A device answers:
//
//	GET /version   200, the firmware version as text ("1.4.2\n")
//	PUT /firmware  the body is the version to install: 200 with the version; 503 when the
//	               device was told to refuse (RefuseFlash), leaving the version as it was
//	GET /health    200 "ok", or 503 "unhealthy" after a flash it was told to break on
//
// A test starts a fleet with Start(n), writes its inventory with WriteInventory, and points
// a flash script at it, e.g.
//
//	curl -fsS -X PUT --data "$TRAINYARD_VERSION" "http://$DEVICE_ADDRESS/firmware"
//
// Design note for a later `trainyard devicesim` subcommand (a lab on a laptop): it needs no
// more than is exported here. Options.Addrs pins the ports so an inventory written once
// stays valid across restarts; Options.Version and IDPrefix set the starting firmware and
// the names; Fleet.WriteInventory writes the file the site worker reads (or Fleet.Inventory
// serves it over HTTP); Fleet.Device gives the faults (BreakOnFlash, RefuseFlash, Repair)
// a flag or signal could trigger; Close ends it all on SIGINT. Device.Handler lets one
// device be mounted on a server the command builds itself.
//
// It must listen only on loopback unless the caller gives other addresses, and it keeps
// no state outside memory.
package devicesim
