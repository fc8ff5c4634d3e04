package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// UserEntry is one user in the users file.
type UserEntry struct {
	// Password is the bcrypt hash of the user's password (see HashPassword).
	Password string `json:"password" yaml:"password"`
	// Publish and Subscribe are the user's topic grants, with %u (username)
	// and %c (client id) templates.
	Publish   []string `json:"publish" yaml:"publish"`
	Subscribe []string `json:"subscribe" yaml:"subscribe"`
	// Admin allows $SYS.
	Admin bool `json:"admin" yaml:"admin"`
}

// UsersFile is the layout of the users file, for simple self-hosting
// without a token API:
//
//	users:
//	  alice:
//	    password: $2a$10$...   # bcrypt
//	    publish: ["devices/%c/out"]
//	    subscribe: ["devices/%c/in/#", "broadcast/+"]
type UsersFile struct {
	Users map[string]UserEntry `json:"users" yaml:"users"`
}

// User is an authenticated user.
type User struct {
	Name   string
	Grants Grants
	Admin  bool
}

// Permissions compiles the user's grants for one connection.
func (u *User) Permissions(clientID string) *Permissions {
	return Compile(u.Grants, u.Admin, u.Name, clientID)
}

// Users checks usernames and passwords against bcrypt hashes. It is
// immutable and safe for concurrent use. bcrypt is deliberately slow
// (about 50-100 ms at the default cost): every check costs that much CPU.
type Users struct {
	users map[string]userRec
	dummy []byte // compared for unknown users, so they cost the same time
}

type userRec struct {
	hash []byte
	user User
}

// NewUsers validates entries and returns a Users.
func NewUsers(entries map[string]UserEntry) (*Users, error) {
	us := &Users{users: make(map[string]userRec, len(entries))}
	var problems []string
	names := make([]string, 0, len(entries))
	for n := range entries {
		names = append(names, n)
	}
	sort.Strings(names)
	cost := 0 // the highest cost in the file; 0 gives bcrypt.DefaultCost when empty
	for _, name := range names {
		e := entries[name]
		if !validIdentity(name) {
			problems = append(problems, fmt.Sprintf("user %q: invalid username", name))
			continue
		}
		c, err := bcrypt.Cost([]byte(e.Password))
		if err != nil {
			problems = append(problems, fmt.Sprintf("user %q: password is not a bcrypt hash", name))
			continue
		}
		cost = max(cost, c)
		g := Grants{Pub: e.Publish, Sub: e.Subscribe}
		if err := g.Validate(); err != nil {
			problems = append(problems, fmt.Sprintf("user %q: %v", name, err))
			continue
		}
		us.users[name] = userRec{hash: []byte(e.Password), user: User{Name: name, Grants: g, Admin: e.Admin}}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%w: users: %s", ErrInvalidConfig, strings.Join(problems, "; "))
	}
	dummy, err := bcrypt.GenerateFromPassword([]byte("courier-dummy-password"), cost)
	if err != nil {
		return nil, fmt.Errorf("users: %w", err)
	}
	us.dummy = dummy
	return us, nil
}

// LoadUsers reads a UsersFile from path.
func LoadUsers(path string, unmarshal Unmarshal) (*Users, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read users file: %w", err)
	}
	if unmarshal == nil {
		unmarshal = json.Unmarshal
	}
	var f UsersFile
	if err := unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("%w: users file %s: %v", ErrInvalidConfig, path, err)
	}
	return NewUsers(f.Users)
}

// Authenticate checks username and password. It returns ErrUnauthenticated
// for an unknown user or a wrong password, taking the same time for both.
func (us *Users) Authenticate(username, password string) (*User, error) {
	rec, ok := us.users[username]
	hash := rec.hash
	if !ok {
		hash = us.dummy
	}
	err := bcrypt.CompareHashAndPassword(hash, []byte(password))
	if !ok || err != nil {
		if err != nil && !errors.Is(err, bcrypt.ErrMismatchedHashAndPassword) && ok {
			return nil, fmt.Errorf("%w: %v", ErrUnauthenticated, err)
		}
		return nil, ErrUnauthenticated
	}
	u := rec.user
	return &u, nil
}

// HashPassword returns the bcrypt hash of password at the default cost, the
// form stored in the users file.
func HashPassword(password string) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return string(h), nil
}
