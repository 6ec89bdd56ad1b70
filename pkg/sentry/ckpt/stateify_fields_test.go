package ckpt

import "testing"

// TestStateFieldsUsed fails when a gVisor bump renames, removes or retypes a field this package
// reads through stateField: the object capture that depends on it would otherwise fail at freeze
// time. Fix the capture (and docs/upstream-gaps.md) when it does.
func TestStateFieldsUsed(t *testing.T) {
	for _, u := range stateFieldsUsed() {
		if u.obj == nil {
			t.Errorf("field %q: its struct type is gone (gVisor changed)", u.field)
			continue
		}
		f, err := stateField(u.obj, u.field)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		if f.Kind() != u.kind {
			t.Errorf("%s.%s is a %s, the capture reads it as a %s", u.obj.StateTypeName(), u.field, f.Kind(), u.kind)
		}
	}
}
