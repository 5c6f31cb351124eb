package client

import "github.com/opxhq/opx/api"

// clockCheck has no kernel answer on macOS; the Vault and OpenBao checks
// compare the clock with their servers'.
func clockCheck() (api.Check, bool) { return api.Check{}, false }
