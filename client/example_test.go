//go:build unix

// Against the real daemon, which has no Windows port on this branch yet
// (issue 23): the Windows tests of the library are dial_windows_test.go.

package client_test

import (
	"context"
	"fmt"
	"log"
	"sort"

	"github.com/opxhq/opx/client"
)

// A program reads a secret through the daemon, which it starts when none
// is running. The examples run against opx's fake backend, whose values
// are "fake_" and a hash of the ref.
func Example() {
	c := client.New(client.Options{Autostart: true})
	defer c.Close()

	v, err := c.Read(context.Background(), client.Query{}, "op://Private/db/password")
	if err != nil {
		log.Fatal(err)
	}
	defer clear(v) // the value is the caller's to wipe
	fmt.Printf("%s\n", v)
	// Output: fake_ea18ca566d900ddc
}

// Reads reads many refs in one round trip; each ref has its own result, so
// one that fails does not hide the others.
func ExampleClient_Reads() {
	c := client.New(client.Options{Autostart: true})
	defer c.Close()

	refs := []string{"op://Private/db/password", "vault://secret/app#key", "op://Private"}
	res, err := c.Reads(context.Background(), client.Query{}, refs)
	if err != nil {
		log.Fatal(err) // no daemon, a locked session, a refused process
	}
	for _, ref := range refs {
		if r := res[ref]; r.Err != nil {
			fmt.Printf("%s: %s\n", ref, r.Err.Code)
		} else {
			fmt.Printf("%s: %s\n", ref, r.Value)
			clear(r.Value)
		}
	}
	// Output:
	// op://Private/db/password: fake_ea18ca566d900ddc
	// vault://secret/app#key: fake_dffd273e40604360
	// op://Private: bad_request
}

// Resolve turns an environment of NAME=ref into NAME=value, as opx run
// does before it starts a command.
func ExampleClient_Resolve() {
	c := client.New(client.Options{Autostart: true})
	defer c.Close()

	env, err := c.Resolve(context.Background(), client.Query{}, map[string]string{
		"DB_PASSWORD": "op://Private/db/password",
		"API_KEY":     "vault://secret/app#key",
	})
	if err != nil {
		log.Fatal(err)
	}
	names := make([]string, 0, len(env))
	for name := range env {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Printf("%s=%s\n", name, env[name])
		clear(env[name])
	}
	// Output:
	// API_KEY=fake_dffd273e40604360
	// DB_PASSWORD=fake_ea18ca566d900ddc
}

// Status tells what the daemon serves; a client without Autostart never
// starts one.
func ExampleClient_Status() {
	c := client.New(client.Options{})
	defer c.Close()

	st, err := c.Status(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(st.Backend, st.Session.State)
	// Output: fake unlocked
}
