// Node-RED settings for the benchmark baseline: headless (no editor, no admin API, no HTTP
// port at all), no telemetry or update checks, no palette installs, so nothing reaches the
// internet at run time. start.sh copies this file into the user dir.
module.exports = {
    flowFile: "flows.json",
    credentialSecret: false,
    flowFilePretty: true,
    httpAdminRoot: false,
    httpNodeRoot: false,
    disableEditor: true,
    diagnostics: { enabled: false, ui: false },
    telemetry: { enabled: false, updateNotification: false },
    runtimeState: { enabled: false, ui: false },
    externalModules: {
        autoInstall: false,
        palette: { allowInstall: false, allowUpdate: false, allowUpload: false },
        modules: { allowInstall: false }
    },
    logging: {
        console: { level: "info", metrics: false, audit: false }
    },
    exportGlobalContextKeys: false,
    functionExternalModules: false,
    functionTimeout: 0,
    debugMaxLength: 1000,
    mqttReconnectTime: 1000,
    editorTheme: { projects: { enabled: false }, tours: false }
};
