package scrub

import "testing"

func TestDoRunsF(t *testing.T) {
	ran := false
	Do(func() { ran = true })
	if !ran {
		t.Fatal("Do did not run f")
	}
}

func TestDoPassesAPanicOn(t *testing.T) {
	defer func() {
		if r := recover(); r != "boom" {
			t.Fatalf("recover() = %v, want boom", r)
		}
	}()
	Do(func() { panic("boom") })
}
