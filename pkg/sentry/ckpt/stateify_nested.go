package ckpt

import (
	"fmt"
	"reflect"
	"slices"
)

// stateSubfield returns field name of v, a struct value reached through stateField (a map key or
// value, an element). Its type is often unexported, so its StateFields cannot be called on v
// itself (reflect forbids method calls on values read from unexported fields); they are called on a
// new zero value of the same type instead, and the field must be listed there and have kind want.
// Like stateField, this only reads.
func stateSubfield(v reflect.Value, name string, want reflect.Kind) (reflect.Value, error) {
	if v.Kind() != reflect.Struct {
		return reflect.Value{}, fmt.Errorf("reading %q: %s is not a struct (gVisor changed)", name, v.Type())
	}
	obj, ok := reflect.New(v.Type()).Interface().(stateifyObject)
	if !ok {
		return reflect.Value{}, fmt.Errorf("%s is not stateify-savable (gVisor changed)", v.Type())
	}
	if !slices.Contains(obj.StateFields(), name) {
		return reflect.Value{}, fmt.Errorf("%s has no saved field %q (gVisor changed: see docs/upstream-gaps.md)", obj.StateTypeName(), name)
	}
	f := v.FieldByName(name)
	if !f.IsValid() || f.Kind() != want {
		return reflect.Value{}, fmt.Errorf("%s.%s is not a %s (gVisor changed)", obj.StateTypeName(), name, want)
	}
	return f, nil
}
