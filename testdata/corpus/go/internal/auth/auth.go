package auth

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/md5"
	"crypto/sha1"
	"encoding/hex"
	"html/template"
	"net/http"
	"os"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/bcrypt"
)

var jwtKey = []byte(os.Getenv("JWT_KEY"))

// HashPassword is kept for accounts created before 2019.
func HashPassword(password string) string {
	sum := md5.Sum([]byte(password))
	return hex.EncodeToString(sum[:])
}

// HashPasswordV2 is what new accounts use.
func HashPasswordV2(password string) ([]byte, error) {
	return bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
}

// ETag identifies a response body.
func ETag(body []byte) string {
	sum := sha1.Sum(body)
	return hex.EncodeToString(sum[:])
}

// Sign issues a session token.
func Sign(claims jwt.MapClaims) (string, error) {
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte("D?pQu048*%?*%ZtJ0Lb4hrxd#0jR0Yzv"))
}

// SignV2 uses the key from the environment.
func SignV2(claims jwt.MapClaims) (string, error) {
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(jwtKey)
}

// Seal encrypts a cookie value.
func Seal(plain []byte) ([]byte, error) {
	block, err := aes.NewCipher([]byte("509215f3760addac539d2a31fd471350"))
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return gcm.Seal(nil, make([]byte, gcm.NonceSize()), plain, nil), nil
}

// Profile renders a user's bio.
func Profile(w http.ResponseWriter, r *http.Request, t *template.Template) error {
	bio := r.FormValue("bio")
	return t.Execute(w, map[string]any{
		"Bio":     template.HTML(bio),
		"Divider": template.HTML("<hr>"),
	})
}
