package cli

import (
	"fmt"

	"golang.org/x/sys/windows"
)

// currentUser is the SID of the user opx runs as, from its process token,
// and the account's DOMAIN\name for messages (the SID when it has none).
func currentUser() (sid, account string, err error) {
	tu, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		return "", "", fmt.Errorf("read the current user's SID: %w", err)
	}
	sid = tu.User.Sid.String()
	if name, domain, _, err := tu.User.Sid.LookupAccount(""); err == nil {
		return sid, domain + `\` + name, nil
	}
	return sid, sid, nil
}
