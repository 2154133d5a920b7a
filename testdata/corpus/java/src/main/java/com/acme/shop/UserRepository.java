package com.acme.shop;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;

public class UserRepository {
    private final Connection conn;

    public UserRepository(Connection conn) {
        this.conn = conn;
    }

    public ResultSet findByName(String name) throws SQLException {
        Statement st = conn.createStatement();
        return st.executeQuery("SELECT * FROM users WHERE name = '" + name + "'");
    }

    public ResultSet findByNameSafe(String name) throws SQLException {
        PreparedStatement ps = conn.prepareStatement("SELECT * FROM users WHERE name = ?");
        ps.setString(1, name);
        return ps.executeQuery();
    }

    public int deactivate(String id) throws SQLException {
        String sql = "UPDATE users SET active = false WHERE id = " + id;
        return conn.createStatement().executeUpdate(sql);
    }

    public ResultSet page(String orderBy, int limit) throws SQLException {
        String query = String.format("SELECT * FROM users ORDER BY %s LIMIT %d", orderBy, limit);
        return conn.createStatement().executeQuery(query);
    }

    public ResultSet byEmail(String email) throws SQLException {
        String sql = "SELECT * FROM users WHERE email = ?";
        PreparedStatement ps = conn.prepareStatement(sql);
        ps.setString(1, email);
        return ps.executeQuery();
    }

    public void log(String who) {
        System.out.println("executing lookup for " + who);
    }
}
