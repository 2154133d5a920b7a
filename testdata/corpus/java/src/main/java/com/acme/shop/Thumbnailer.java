package com.acme.shop;

import java.io.IOException;
import java.util.List;

public class Thumbnailer {
    public Process make(String upload) throws IOException {
        return Runtime.getRuntime().exec("convert " + upload + " -resize 128x128 thumb.png");
    }

    public Process makeSafe(String upload) throws IOException {
        return new ProcessBuilder(List.of("convert", upload, "-resize", "128x128", "thumb.png")).start();
    }

    public Process hook(String script) throws IOException {
        return new ProcessBuilder("bash", "-c", script).inheritIO().start();
    }

    public Process version() throws IOException {
        return Runtime.getRuntime().exec(new String[] {"convert", "-version"});
    }
}
