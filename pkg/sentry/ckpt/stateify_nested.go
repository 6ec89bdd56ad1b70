package ckpt

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// stateSubfield returns field name of v, a struct value reached through stateField (a map key or
// value, an element). Its type is often unexported, so its StateFields cannot be called on v
// itself (reflect forbids method calls on values read from unexported fields); they are called on a
// new zero value of the same type instead, and the field must be listed there and have kind want
// (reflect.Invalid: any kind). Like stateField, this only reads.
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
	if !f.IsValid() || want != reflect.Invalid && f.Kind() != want {
		return reflect.Value{}, fmt.Errorf("%s.%s is not a %s (gVisor changed)", obj.StateTypeName(), name, want)
	}
	return f, nil
}

// stateNestedInt reads an integer reached from *obj through a path of saved fields, each a struct
// field (not a pointer) of the one before: acceptQueue.capacity of a tcp.Endpoint. Every step is
// checked against the StateFields of its struct (stateSubfield), so a gVisor bump that renames one
// fails here and in TestStateNestedUsed instead of misreading state. Read-only, like stateField.
func stateNestedInt(obj stateifyObject, path ...string) (int64, error) {
	if len(path) == 0 {
		return 0, fmt.Errorf("stateNestedInt: empty path")
	}
	f, err := stateField(obj, path[0])
	for i := 1; err == nil && i < len(path); i++ {
		f, err = stateSubfield(f, path[i], reflect.Invalid)
	}
	if err != nil {
		return 0, err
	}
	switch f.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return f.Int(), nil
	}
	return 0, fmt.Errorf("%s.%s is a %s, want a signed integer (gVisor changed)", obj.StateTypeName(), strings.Join(path, "."), f.Kind())
}

// stateNestedUse is one path stateNestedInt reads, for TestStateNestedUsed.
type stateNestedUse struct {
	obj  stateifyObject
	path []string
}

func (u stateNestedUse) String() string {
	return u.obj.StateTypeName() + "." + strings.Join(u.path, ".")
}
