package com.acme.shop;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.cert.X509Certificate;
import javax.crypto.Cipher;
import javax.crypto.spec.SecretKeySpec;
import javax.net.ssl.X509TrustManager;
import org.apache.http.conn.ssl.NoopHostnameVerifier;
import org.springframework.security.crypto.bcrypt.BCryptPasswordEncoder;

public class Security {
    private static final String KEY = System.getenv("SHOP_AES_KEY");

    public static byte[] hashPassword(String password) throws Exception {
        MessageDigest md = MessageDigest.getInstance("SHA-1");
        return md.digest(password.getBytes(StandardCharsets.UTF_8));
    }

    public static String hashPasswordV2(String password) {
        return new BCryptPasswordEncoder().encode(password);
    }

    public static byte[] fingerprint(byte[] cert) throws Exception {
        return MessageDigest.getInstance("SHA-1").digest(cert);
    }

    public static byte[] encrypt(byte[] data) throws Exception {
        Cipher c = Cipher.getInstance("AES");
        c.init(Cipher.ENCRYPT_MODE, new SecretKeySpec("56d88cce648078b8".getBytes(), "AES"));
        return c.doFinal(data);
    }

    public static byte[] encryptV2(byte[] data, byte[] key, byte[] iv) throws Exception {
        Cipher c = Cipher.getInstance("AES/GCM/NoPadding");
        c.init(Cipher.ENCRYPT_MODE, new SecretKeySpec(key, "AES"));
        return c.doFinal(data);
    }

    public static X509TrustManager trustEverything() {
        return new X509TrustManager() {
            public void checkClientTrusted(X509Certificate[] chain, String authType) {}
            public void checkServerTrusted(X509Certificate[] chain, String authType) {}
            public X509Certificate[] getAcceptedIssuers() { return new X509Certificate[0]; }
        };
    }

    public static Object verifier() {
        return NoopHostnameVerifier.INSTANCE;
    }
}
