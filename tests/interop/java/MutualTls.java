import java.io.FileInputStream;
import java.io.InputStream;
import java.security.KeyStore;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.util.Map;

import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;
import javax.xml.ws.BindingProvider;

/** Mutual TLS for a JAX-WS RI port: one identity (PKCS#12), one trusted CA (PEM). */
final class MutualTls {
    /** The JAX-WS RI request-context key of the HTTPS socket factory (JAXWSProperties). */
    static final String SSL_SOCKET_FACTORY =
            "com.sun.xml.ws.transport.https.client.SSLSocketFactory";

    private MutualTls() {
    }

    /** An SSLContext presenting the key and certificate of {@code pkcs12} and trusting
     *  only the certificate in {@code caPem} (the JDK still checks the server's name). */
    static SSLContext context(String pkcs12, char[] password, String caPem) throws Exception {
        KeyStore identity = KeyStore.getInstance("PKCS12");
        try (InputStream in = new FileInputStream(pkcs12)) {
            identity.load(in, password);
        }
        KeyManagerFactory keys = KeyManagerFactory.getInstance(
                KeyManagerFactory.getDefaultAlgorithm());
        keys.init(identity, password);

        KeyStore trusted = KeyStore.getInstance(KeyStore.getDefaultType());
        trusted.load(null, null);
        try (InputStream in = new FileInputStream(caPem)) {
            X509Certificate ca = (X509Certificate) CertificateFactory.getInstance("X.509")
                    .generateCertificate(in);
            trusted.setCertificateEntry("vbios-ca", ca);
        }
        TrustManagerFactory trust = TrustManagerFactory.getInstance(
                TrustManagerFactory.getDefaultAlgorithm());
        trust.init(trusted);

        SSLContext tls = SSLContext.getInstance("TLS");
        tls.init(keys.getKeyManagers(), trust.getTrustManagers(), null);
        return tls;
    }

    /** {@code port} (a generated proxy) sent to {@code url} through {@code tls}. */
    static <T> T configure(T port, String url, SSLContext tls) {
        Map<String, Object> context = ((BindingProvider) port).getRequestContext();
        context.put(BindingProvider.ENDPOINT_ADDRESS_PROPERTY, url);
        context.put(SSL_SOCKET_FACTORY, tls.getSocketFactory());
        return port;
    }
}
