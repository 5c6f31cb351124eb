//go:build unix

package cli

import "errors"

// currentUser is Windows' alone: a scheduled task names its user by SID.
func currentUser() (sid, account string, err error) {
	return "", "", errors.New("no Windows user SID outside Windows")
}
