import java.io.FileInputStream;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.Collections;
import java.util.HexFormat;
import java.util.List;
import java.util.Properties;

import javax.xml.ws.Holder;

import ws.bios.vbios.v1.*;

/**
 * The JAX-WS (wsimport) client of the interop tier: calls every guest operation of the
 * committed WSDL and a few admin operations over mutual TLS, printing "CALLED <Operation>"
 * after each answered call and "VALUE key=value" lines the pytest test compares with the
 * Python library's view of the same domain.
 *
 * Usage: java Client <settings.properties> (written by tests/interop/test_java.py); with
 * the setting "probe", one call only, printing "PROBE answered" or "PROBE refused ...".
 */
public final class Client {
    private final Properties settings;
    private final VbiosService guest;
    private final VbiosService admin;
    /** BootTimeout values the registry allows: its default plus one and two steps. */
    private long timeoutStep1;
    private long timeoutStep2;

    private Client(Properties settings) throws Exception {
        this.settings = settings;
        VbiosService_Service service = new VbiosService_Service();
        this.guest = port(service, "guest.p12");
        this.admin = port(service, "admin.p12");
    }

    public static void main(String[] args) throws Exception {
        Properties settings = new Properties();
        try (InputStream in = new FileInputStream(args[0])) {
            settings.load(in);
        }
        Client client = new Client(settings);
        if (settings.getProperty("probe") != null) {
            client.probe();
        } else {
            client.run();
        }
    }

    /** One call, to show whether the TLS settings let it through. */
    private void probe() {
        try {
            guest.getAttributeRegistry(new Holder<>(), new Holder<>());
            System.out.println("PROBE answered");
        } catch (Exception failure) {
            Throwable cause = failure;
            while (cause.getCause() != null) {
                cause = cause.getCause();
            }
            System.out.println("PROBE refused " + cause.getClass().getName() + ": "
                               + cause.getMessage());
        }
    }

    /** A port speaking as the PKCS#12 identity in setting {@code keyStore}. */
    private VbiosService port(VbiosService_Service service, String keyStore) throws Exception {
        char[] password = settings.getProperty("p12.password").toCharArray();
        return MutualTls.configure(service.getVbiosService(), settings.getProperty("url"),
                MutualTls.context(settings.getProperty(keyStore), password,
                                  settings.getProperty("ca")));
    }

    private static void called(String operation) {
        System.out.println("CALLED " + operation);
    }

    private static void value(String key, Object value) {
        System.out.println("VALUE " + key + "=" + (value == null ? "<null>" : value));
    }

    private static String b64(byte[] bytes) {
        return Base64.getEncoder().encodeToString(bytes);
    }

    private static String sha256(byte[] bytes) throws Exception {
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
    }

    private static String text(AttributeValue attribute) {
        if (attribute.getIntegerValue() != null) {
            return attribute.getIntegerValue().toString();
        }
        if (attribute.isBooleanValue() != null) {
            return attribute.isBooleanValue().toString();
        }
        return attribute.getStringValue();
    }

    private static AttributeValue attribute(String name, Object value) {
        AttributeValue attribute = new AttributeValue();
        attribute.setName(name);
        if (value instanceof Long) {
            attribute.setIntegerValue((Long) value);
        } else if (value instanceof Boolean) {
            attribute.setBooleanValue((Boolean) value);
        } else {
            attribute.setStringValue((String) value);
        }
        return attribute;
    }

    private static AttributeValueList attributes(AttributeValue... values) {
        AttributeValueList list = new AttributeValueList();
        Collections.addAll(list.getAttributeValue(), values);
        return list;
    }

    private void run() throws Exception {
        long version = attributes();
        version = boot(power(version));
        version = secureBoot(version);
        attestation();
        firmware();
        version = system(version);
        version = password(version);
        credential();
        value("final.version", version);
    }

    /** Registry, values, a conditional write, the typed fault, pending values. */
    private long attributes() throws Exception {
        Holder<String> registryVersion = new Holder<>();
        Holder<AttributeDefinitionList> definitions = new Holder<>();
        guest.getAttributeRegistry(registryVersion, definitions);
        called("GetAttributeRegistry");
        value("registry.version", registryVersion.value);
        value("registry.count", definitions.value.getAttributeDefinition().size());
        for (AttributeDefinition definition : definitions.value.getAttributeDefinition()) {
            if (definition.getName().equals("BootTimeout")) {
                value("registry.BootTimeout.type", definition.getType().value());
                long base = definition.getDefault().getIntegerValue();
                long step = definition.getScalarIncrement() == null ? 1
                        : definition.getScalarIncrement();
                value("registry.BootTimeout.default", base);
                value("registry.BootTimeout.step", step);
                timeoutStep1 = base + step;
                timeoutStep2 = base + 2 * step;
            }
        }

        Holder<Long> version = new Holder<>();
        Holder<Boolean> passwordSet = new Holder<>();
        Holder<AttributeValueList> values = new Holder<>();
        guest.getAttributes(null, version, passwordSet, values);
        called("GetAttributes");
        value("start.version", version.value);
        value("start.count", values.value.getAttributeValue().size());
        long start = version.value;

        long written = guest.setAttributes(
                attributes(attribute("BootTimeout", timeoutStep1), attribute("NumLock", false),
                           attribute("AssetTag", settings.getProperty("asset.tag"))),
                ApplyTime.IMMEDIATE, start, null);
        called("SetAttributes");
        value("set.version", written);

        try {
            guest.setAttributes(attributes(attribute("BootTimeout", timeoutStep2)),
                                ApplyTime.IMMEDIATE, start, null);
            value("stale.fault", "none");
        } catch (VbiosFault fault) {
            VbiosFaultDetail detail = fault.getFaultInfo();
            value("stale.fault.class", fault.getClass().getName());
            value("stale.fault.code", detail.getCode());
            value("stale.fault.message", detail.getMessage());
        }

        long pendingWrite = guest.setAttributes(attributes(attribute("BootMode", "Bios")),
                                                ApplyTime.ON_RESET, written, null);
        Holder<Long> pendingVersion = new Holder<>();
        Holder<AttributeValueList> pending = new Holder<>();
        guest.getPendingAttributes(pendingVersion, pending);
        called("GetPendingAttributes");
        for (AttributeValue attribute : pending.value.getAttributeValue()) {
            value("pending." + attribute.getName(), text(attribute));
        }
        long defaults = guest.resetAttributesToDefaults(pendingWrite, null);
        called("ResetAttributesToDefaults");
        guest.getPendingAttributes(pendingVersion, pending);
        value("defaults.pending.count", pending.value.getAttributeValue().size());
        long cancelled = guest.cancelPendingAttributes(defaults, null);
        called("CancelPendingAttributes");
        guest.getPendingAttributes(pendingVersion, pending);
        value("cancelled.pending.count", pending.value.getAttributeValue().size());
        return cancelled;
    }

    /** The guest's power request, and the admin's view of the same domain. */
    private long power(long version) throws Exception {
        Holder<PowerState> state = new Holder<>();
        Holder<ResetCause> cause = new Holder<>();
        Holder<String> time = new Holder<>();
        Holder<Boolean> pendingChanges = new Holder<>();
        guest.getPowerState(state, cause, time, pendingChanges);
        called("GetPowerState");
        value("power.before", state.value.value());

        // events: subscribed (every type: EventTypes null) before the Reset, read after it
        Holder<String> subscription = new Holder<>();
        Holder<String> expires = new Holder<>();
        Holder<Long> cursor = new Holder<>();
        guest.subscribe(null, Integer.valueOf(settings.getProperty("events.expires.in")), null,
                        subscription, expires, cursor);
        called("Subscribe");

        Holder<String> message = new Holder<>();
        guest.reset(ResetType.ON, state, pendingChanges, message);
        called("Reset");
        value("reset.state", state.value.value());

        guest.getPowerState(state, cause, time, pendingChanges);
        value("power.cause", cause.value.value());
        value("power.time", time.value);

        Holder<MachineKind> machine = new Holder<>();
        admin.getDomainPowerState(settings.getProperty("domain"), state, cause, time,
                                  pendingChanges, machine);
        called("GetDomainPowerState");
        value("admin.power.cause", cause.value.value());
        value("admin.power.time", time.value);
        value("admin.machine", machine.value.value());
        events(subscription.value, expires.value, cursor.value);
        return version;
    }

    /** What the Reset published, read from the Subscribe's cursor; Renew, Unsubscribe. */
    private void events(String subscription, String subscribed, Long cursor) throws Exception {
        Holder<EventList> events = new Holder<>();
        Holder<Long> nextCursor = new Holder<>();
        Holder<Boolean> lost = new Holder<>();
        Holder<String> expires = new Holder<>();
        guest.getEvents(subscription, cursor,
                        Integer.valueOf(settings.getProperty("events.wait")), null,
                        events, nextCursor, lost, expires);
        called("GetEvents");
        List<String> ids = new ArrayList<>();
        List<String> types = new ArrayList<>();
        List<String> domains = new ArrayList<>();
        for (Event event : events.value.getEvent()) {
            ids.add(Long.toString(event.getEventId()));
            types.add(event.getEventType().value());
            domains.add(event.getDomain() == null ? "" : event.getDomain());  // optional
        }
        value("events.subscription_id", subscription);
        value("events.cursor", cursor);
        value("events.expires", subscribed);
        value("events.event_ids", String.join(",", ids));
        value("events.event_types", String.join(",", types));
        value("events.event_domains", String.join(",", domains));
        value("events.next_cursor", nextCursor.value);
        value("events.events_lost", lost.value);

        String renewed = guest.renew(subscription,
                                     Integer.valueOf(settings.getProperty("events.renew.in")));
        called("Renew");
        value("events.renewed_expires", renewed);
        // request and response both hold SubscriptionId: wsimport makes it an in-out Holder
        Holder<String> ended = new Holder<>(subscription);
        guest.unsubscribe(ended);
        called("Unsubscribe");
        value("events.unsubscribed", ended.value);
    }

    private long boot(long version) throws Exception {
        Holder<Long> bootVersion = new Holder<>();
        Holder<BootOptionList> options = new Holder<>();
        Holder<BootOrder> order = new Holder<>();
        Holder<String> bootNext = new Holder<>();
        guest.getBootOrder(bootVersion, options, order, bootNext);
        called("GetBootOrder");
        List<String> reversed = new ArrayList<>(order.value.getOptionId());
        Collections.reverse(reversed);
        BootOrder wanted = new BootOrder();
        wanted.getOptionId().addAll(reversed);
        version = guest.setBootOrder(wanted, bootVersion.value, null);
        called("SetBootOrder");
        version = guest.setBootNext(reversed.get(reversed.size() - 1), version, null);
        called("SetBootNext");
        guest.getBootOrder(bootVersion, options, order, bootNext);
        value("boot.order", String.join(",", order.value.getOptionId()));
        value("boot.next", bootNext.value);
        value("boot.version", bootVersion.value);
        return version;
    }

    /** The switch, the key databases, and the admin adding and removing a db certificate. */
    private long secureBoot(long version) throws Exception {
        Holder<Boolean> enabled = new Holder<>();
        Holder<SecureBootCurrentBoot> currentBoot = new Holder<>();
        Holder<SecureBootMode> mode = new Holder<>();
        Holder<Boolean> pendingEnabled = new Holder<>();
        guest.getSecureBoot(enabled, currentBoot, mode, pendingEnabled);
        called("GetSecureBoot");
        version = guest.resetSecureBootKeys(ResetKeysType.RESET_ALL_KEYS_TO_DEFAULT, version,
                                            null);
        called("ResetSecureBootKeys");
        version = guest.setSecureBoot(!enabled.value, version, null);
        called("SetSecureBoot");
        guest.getSecureBoot(enabled, currentBoot, mode, pendingEnabled);
        value("secureboot.enabled", enabled.value);
        value("secureboot.mode", mode.value.value());
        value("secureboot.pending", pendingEnabled.value);

        String domain = settings.getProperty("domain");
        String pem = Files.readString(Path.of(settings.getProperty("secureboot.cert")));
        admin.addSecureBootCertificate(domain, SecureBootDatabaseName.DB, pem);
        called("AddSecureBootCertificate");
        String added = null;
        for (SecureBootDatabase database : guest.getSecureBootDatabases().getDatabase()) {
            for (SecureBootCertificate certificate : database.getCertificates().getCertificate()) {
                if (certificate.getSubject().contains(settings.getProperty("secureboot.cn"))) {
                    added = certificate.getSha256();
                    value("secureboot.added.database", database.getName().value());
                }
            }
        }
        called("GetSecureBootDatabases");
        value("secureboot.added.sha256", added);
        version = admin.removeSecureBootCertificate(domain, SecureBootDatabaseName.DB, added);
        called("RemoveSecureBootCertificate");
        for (SecureBootDatabase database : guest.getSecureBootDatabases().getDatabase()) {
            List<String> hashes = new ArrayList<>();
            for (SecureBootCertificate certificate : database.getCertificates().getCertificate()) {
                hashes.add(certificate.getSha256());
            }
            value("secureboot.db." + database.getName().value(), String.join(",", hashes));
        }
        return version;
    }

    private void attestation() throws Exception {
        Holder<String> bank = new Holder<>("sha256");
        Holder<PcrValueList> pcrs = new Holder<>();
        Holder<byte[]> eventLog = new Holder<>();
        Holder<MeasuredEventList> events = new Holder<>();
        guest.getBootMeasurements(bank, pcrs, eventLog, events);
        called("GetBootMeasurements");
        value("measurements.bank", bank.value);
        value("measurements.events", events.value.getMeasuredEvent().size());
        for (PcrValue pcr : pcrs.value.getPcrValue()) {
            value("measurements.pcr." + pcr.getIndex(), HexFormat.of().formatHex(pcr.getValue()));
        }

        PcrIndexList selection = new PcrIndexList();
        for (String index : settings.getProperty("quote.pcrs").split(",")) {
            selection.getIndex().add(Integer.valueOf(index));
        }
        Holder<String> quoteBank = new Holder<>("sha256");
        Holder<byte[]> attest = new Holder<>();
        Holder<byte[]> signature = new Holder<>();
        Holder<PcrValueList> quoted = new Holder<>();
        Holder<byte[]> akCertificate = new Holder<>();
        Holder<byte[]> quoteLog = new Holder<>();
        guest.getQuote(HexFormat.of().parseHex(settings.getProperty("quote.nonce")), quoteBank,
                       selection, attest, signature, quoted, akCertificate, quoteLog);
        called("GetQuote");
        value("quote.bank", quoteBank.value);
        value("quote.attest", b64(attest.value));
        value("quote.signature", b64(signature.value));
        value("quote.ak", b64(akCertificate.value));
        value("quote.log", b64(quoteLog.value));
        for (PcrValue pcr : quoted.value.getPcrValue()) {
            value("quote.pcr." + pcr.getIndex(), b64(pcr.getValue()));
        }

        IntegrityReport report = guest.getIntegrityStatus();
        called("GetIntegrityStatus");
        value("integrity.state", report.getState().value());
        value("integrity.restricted", report.isRestricted());
        value("integrity.bank", report.getBank());

        Holder<Long> referenceVersion = new Holder<>();
        Holder<String> updatedAt = new Holder<>();
        Holder<String> referenceDigest = new Holder<>();
        Holder<String> manifest = new Holder<>();
        guest.getReferenceMeasurements(referenceVersion, updatedAt, referenceDigest, manifest);
        called("GetReferenceMeasurements");
        value("reference.digest", referenceDigest.value);

        Holder<String> collectedAt = new Holder<>();
        Holder<IntegrityReport> status = new Holder<>();
        Holder<String> diagnosticsBank = new Holder<>();
        Holder<PcrValueList> diagnosticsPcrs = new Holder<>();
        Holder<byte[]> diagnosticsLog = new Holder<>();
        Holder<MeasuredEventList> diagnosticsEvents = new Holder<>();
        Holder<String> unavailable = new Holder<>();
        Holder<AuditEntryList> audit = new Holder<>();
        guest.collectDiagnostics(collectedAt, status, diagnosticsBank, diagnosticsPcrs,
                                 diagnosticsLog, diagnosticsEvents, unavailable, audit);
        called("CollectDiagnostics");
        value("diagnostics.state", status.value.getState().value());
        value("diagnostics.bank", diagnosticsBank.value);
        value("diagnostics.events", diagnosticsEvents.value == null ? 0
              : diagnosticsEvents.value.getMeasuredEvent().size());
    }

    /** The firmware update: after the reset, so the job waits for the next one. */
    private void firmware() throws Exception {
        for (FirmwareEntry entry : guest.getFirmwareInventory().getEntry()) {
            value("firmware.fw_version", entry.getFwVersion());
            value("firmware.active_slot", entry.getActiveSlot().value());
        }
        called("GetFirmwareInventory");

        byte[] capsule = Files.readAllBytes(Path.of(settings.getProperty("firmware.capsule")));
        Holder<String> uploadId = new Holder<>();
        Holder<Long> maxChunkSize = new Holder<>();
        Holder<Long> nextOffset = new Holder<>();
        Holder<String> expiresAt = new Holder<>();
        guest.beginFirmwareUpload(capsule.length, sha256(capsule), null, uploadId, maxChunkSize,
                                  nextOffset, expiresAt, new Holder<>(), new Holder<>());
        called("BeginFirmwareUpload");
        long chunkSize = Math.min(Long.parseLong(settings.getProperty("firmware.chunk.size")),
                                  maxChunkSize.value);
        long offset = nextOffset.value;
        int chunks = 0;
        Holder<Long> total = new Holder<>();
        while (offset < capsule.length) { // each chunk starts where the server says
            byte[] chunk = Arrays.copyOfRange(capsule, (int) offset,
                                              (int) Math.min(offset + chunkSize, capsule.length));
            guest.uploadFirmwareChunk(uploadId.value, offset, chunk, sha256(chunk), nextOffset,
                                      total, expiresAt);
            called("UploadFirmwareChunk");
            if (nextOffset.value <= offset) {
                throw new IllegalStateException("the upload did not move past offset " + offset);
            }
            offset = nextOffset.value;
            chunks++;
        }
        value("firmware.chunks", chunks);
        Holder<Long> size = new Holder<>();
        Holder<String> digest = new Holder<>();
        Holder<Boolean> encrypted = new Holder<>();
        guest.getFirmwareUpload(uploadId.value, size, digest, encrypted, total, nextOffset,
                                expiresAt);
        called("GetFirmwareUpload");
        value("firmware.next_offset", nextOffset.value);

        FirmwareJob job = guest.commitFirmwareUpload(uploadId.value, ApplyTime.ON_RESET);
        called("CommitFirmwareUpload");
        value("firmware.job_id", job.getJobId());
        value("firmware.state", job.getState().value());
        value("firmware.slot", job.getSlot() == null ? null : job.getSlot().value());
        value("firmware.monotonic_count", job.getMonotonicCount()); // xs:unsignedLong: BigInteger
        value("firmware.job_state", guest.getFirmwareJob(job.getJobId()).getState().value());
        called("GetFirmwareJob");
        List<String> history = new ArrayList<>();
        for (FirmwareJob past : guest.getFirmwareHistory().getJob()) {
            history.add(past.getJobId());
        }
        called("GetFirmwareHistory");
        value("firmware.history", String.join(",", history));
    }

    /**
     * System management and thermal, after the reset (the log holds its power entries):
     * SMBIOS, the CPU reading (xs:double: a double), a wake alarm set, read and cleared, the
     * watchdog armed (a timeout far past the run), petted, read and disarmed, the log read
     * and cleared. Arming and disarming set OsWatchdogTimer: the attributes' version moves
     * on, so the version is read again (GetAttributes) and returned.
     */
    private long system(long version) throws Exception {
        Holder<SmbiosBios> bios = new Holder<>();
        Holder<SmbiosSystem> system = new Holder<>();
        guest.getSmbios(bios, system, new Holder<>(), new Holder<>());
        called("GetSmbios");
        value("system.bios_vendor", bios.value.getVendor());
        value("system.bios_version", bios.value.getVersion());
        value("system.system_serial", system.value.getSerialNumber());
        value("system.system_uuid", system.value.getUuid());

        Holder<TemperatureSensorList> temperatures = new Holder<>();
        guest.getThermal(new Holder<>(), new Holder<>(), new Holder<>(), new Holder<>(),
                         new Holder<>(), new Holder<>(), new Holder<>(), temperatures,
                         new Holder<>());
        called("GetThermal");
        TemperatureSensor cpu = temperatures.value.getSensor().stream()
            .filter(sensor -> "CPU".equals(sensor.getPhysicalContext())).findFirst()
            .orElseThrow(() -> new IllegalStateException("GetThermal answered no CPU sensor"));
        double reading = cpu.getReading();
        value("system.cpu_reading", reading);
        value("system.cpu_upper_critical", cpu.getThresholds().getUpperCritical().getReading());

        // RFC 3339 in UTC, whole seconds (WakeTime is an xs:string in the WSDL)
        String wake = java.time.Instant.now().plusSeconds(600)
            .truncatedTo(java.time.temporal.ChronoUnit.SECONDS).toString();
        guest.setWakeAlarm(wake);
        called("SetWakeAlarm");
        value("system.wake_set", wake);
        value("system.wake_read", guest.getWakeAlarm().getWakeTime());
        called("GetWakeAlarm");
        value("system.wake_cleared", guest.clearWakeAlarm());
        called("ClearWakeAlarm");

        int seconds = Integer.parseInt(settings.getProperty("watchdog.seconds"));
        value("system.watchdog_armed", guest.setWatchdog(true, seconds).getTimeoutSeconds());
        called("SetWatchdog");
        value("system.watchdog_pet_deadline", guest.petWatchdog().getDeadline());
        called("PetWatchdog");
        value("system.watchdog_enabled", guest.getWatchdog().isEnabled());
        called("GetWatchdog");
        // TimeoutSeconds is optional: null leaves the element out
        value("system.watchdog_disarmed", guest.setWatchdog(false, null).isEnabled());

        Holder<SelEntryList> entries = new Holder<>();
        guest.getSystemEventLog(new Holder<>(), new Holder<>(), new Holder<>(), entries);
        called("GetSystemEventLog");
        List<String> messageIds = new ArrayList<>();
        long lastId = 0;
        for (SelEntry entry : entries.value.getEntry()) {
            messageIds.add(entry.getMessageId());
            lastId = Math.max(lastId, entry.getId());
        }
        value("system.sel_entries", messageIds.size());
        value("system.sel_last_id", lastId);
        value("system.sel_message_ids", String.join(",", messageIds));
        value("system.sel_removed", guest.clearSystemEventLog());
        called("ClearSystemEventLog");

        Holder<Long> current = new Holder<>();
        NameList wanted = new NameList();
        wanted.getName().add("OsWatchdogTimer");
        Holder<AttributeValueList> values = new Holder<>();
        guest.getAttributes(wanted, current, new Holder<>(), values);
        called("GetAttributes");
        for (AttributeValue attribute : values.value.getAttributeValue()) {
            value("system.attr." + attribute.getName(), text(attribute));
        }
        value("system.version.before", version);
        value("system.version.after", current.value);
        return current.value;
    }

    /** A setup password set (it stays set), then a write that must give it. */
    private long password(long version) throws Exception {
        String secret = settings.getProperty("setup.password");
        version = guest.changePassword("SetupPassword", null, secret, version, null);
        called("ChangePassword");
        version = guest.setAttributes(attributes(attribute("BootTimeout", timeoutStep2)),
                                      ApplyTime.IMMEDIATE, version, secret);
        Holder<Long> current = new Holder<>();
        Holder<Boolean> passwordSet = new Holder<>();
        Holder<AttributeValueList> values = new Holder<>();
        List<String> names = List.of("BootTimeout", "NumLock", "AssetTag");
        NameList wanted = new NameList();
        wanted.getName().addAll(names);
        guest.getAttributes(wanted, current, passwordSet, values);
        for (AttributeValue attribute : values.value.getAttributeValue()) {
            value("attr." + attribute.getName(), text(attribute));
        }
        value("attr.version", current.value);
        value("attr.passwordSet", passwordSet.value);
        return version;
    }

    /** Last: renewing the certificate (the old one is revoked once the new one is used). */
    private void credential() throws Exception {
        Holder<ProvisioningState> state = new Holder<>();
        Holder<String> nextStep = new Holder<>();
        Holder<String> notAfter = new Holder<>();
        guest.getProvisioningState(state, nextStep, notAfter);
        called("GetProvisioningState");
        value("provisioning.state", state.value.value());
        value("provisioning.next", nextStep.value);

        byte[] request = Files.readAllBytes(Path.of(settings.getProperty("renewal.csr")));
        Holder<byte[]> certificate = new Holder<>();
        Holder<byte[]> caCertificate = new Holder<>();
        Holder<String> serial = new Holder<>();
        Holder<String> renewedNotAfter = new Holder<>();
        guest.renewCertificate(request, certificate, caCertificate, serial, renewedNotAfter);
        called("RenewCertificate");
        Files.write(Path.of(settings.getProperty("renewal.out")), certificate.value);
        value("renewal.serial", serial.value);
        value("renewal.notAfter", renewedNotAfter.value);
    }
}
